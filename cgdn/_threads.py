"""Thread-count policy and BLAS/OpenMP cooperation."""
import functools
import numbers
import os
import threading
from contextlib import contextmanager

import numpy as np

from cgdn import _kernels


_CPU_COUNT = os.cpu_count() or 1  # os.cpu_count() is slow enough to matter per call
# libgomp reads OMP_NUM_THREADS once, at load: so do we.
_OMP_ENV_SET = bool(os.environ.get("OMP_NUM_THREADS"))


@functools.cache
def _controller():
    # Created lazily, after cgdn._kernels is imported, so libgomp and BLAS are loaded.
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def effective_num_threads(num_threads):
    """Resolve the public ``num_threads`` argument to a positive thread count.

    ``None`` is the OpenMP default of the calling thread (it honours ``OMP_NUM_THREADS``
    and ``threadpoolctl`` OpenMP limits), capped at the CPU count when ``OMP_NUM_THREADS``
    is unset; a positive int is used as given; a negative int counts back from that
    default (``-1`` = all, ``-2`` = all but one, never fewer than one), as in scikit-learn.
    """
    if num_threads is not None and (
        isinstance(num_threads, (bool, np.bool_))
        or not isinstance(num_threads, numbers.Integral)
    ):
        raise TypeError(
            f"num_threads must be an int or None, got {type(num_threads).__name__}"
        )
    if num_threads == 0:
        raise ValueError("num_threads must be a positive int, a negative int or None, got 0")
    max_threads = _kernels.omp_max_threads()
    if not _OMP_ENV_SET:
        max_threads = min(max_threads, _CPU_COUNT)
    if num_threads is None:
        return max(1, max_threads)
    num_threads = int(num_threads)
    if num_threads < 0:
        return max(1, max_threads + num_threads + 1)
    return num_threads


@functools.cache
def _kernel_blas():
    """A controller of the BLAS that the kernels call (SciPy's), or of every BLAS.

    SciPy's wheels carry their own OpenBLAS (in ``scipy.libs``) next to NumPy's: limiting
    only SciPy's leaves NumPy's thread pool (and its threads) alone.
    """
    blas = _controller().select(user_api="blas")
    scipy_libs = [lib.filepath for lib in blas.lib_controllers
                  if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")]
    return blas.select(filepath=scipy_libs) if scipy_libs else blas


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def sequential_blas():
    """Keep BLAS single-threaded while any cgdn kernel runs BLAS inside its OpenMP region.

    Calls from several Python threads share one limit: the first one in sets it, the
    last one out restores the original, so overlapping calls never restore each other's
    limit too early or leave BLAS limited afterwards.
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = _kernel_blas().limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
