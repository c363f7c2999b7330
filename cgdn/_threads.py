"""Thread-count policy (OpenMP) and the threadpoolctl controller used by show_config."""
import functools
import numbers

import numpy as np

from cgdn import _core


@functools.cache
def _controller():
    # Created lazily, after cgdn._core is imported, so libgomp is loaded.
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def effective_num_threads(num_threads):
    """Resolve the public ``num_threads`` argument to a positive thread count.

    ``None`` is the OpenMP default of the calling thread (it honours ``OMP_NUM_THREADS``
    and ``threadpoolctl`` OpenMP limits), capped at the CPU count when ``OMP_NUM_THREADS``
    is unset; a positive int is used as given; a negative int counts back from that
    default (``-1`` = all, ``-2`` = all but one, never fewer than one), as in scikit-learn.
    """
    if type(num_threads) is int and num_threads > 0:
        return num_threads   # the common case, before the slower generic checks
    if num_threads is not None and (
        isinstance(num_threads, (bool, np.bool_))
        or not isinstance(num_threads, numbers.Integral)
    ):
        raise TypeError(
            f"num_threads must be an int or None, got {type(num_threads).__name__}"
        )
    if num_threads == 0:
        raise ValueError("num_threads must be a positive int, a negative int or None, got 0")
    default = _core.default_num_threads()
    if num_threads is None:
        return default
    num_threads = int(num_threads)
    if num_threads < 0:
        return max(1, default + num_threads + 1)
    return num_threads


def lazy_threads(num_threads):
    """``num_threads`` for the tasks of a Dask graph: None stays None (one thread per
    task, decided in cgdn._dask), anything else as :func:`effective_num_threads`."""
    return None if num_threads is None else effective_num_threads(num_threads)
