"""cgdn on Dask arrays: the same calls, lazily, chunk by chunk.

Dask stays optional: nothing here imports it until a Dask array is passed (a Dask array
can only exist once dask.array is imported), so ``import cgdn`` never loads it.

Rules (documented in the README, "Scaling out"):
- the result is chunked like the input except that the channel axis is one chunk; if one
  chunk with all channels would exceed Dask's ``array.chunk-size`` setting, the other axes
  are rechunked ("auto") to fit it;
- parameters travel inside the task graph as NumPy arrays, never through a store: ``gdn``
  and layers resolve their variables in the caller's store when the graph is built;
- inside a task the kernels use one OpenMP thread unless ``num_threads`` is given: tasks
  already run concurrently (one per worker thread), and OpenMP threads of concurrent tasks
  would oversubscribe the cores.
"""
import math
import sys

import numpy as np


def is_dask_array(value):
    """Whether ``value`` is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(value, module.Array)


def _channels_one_chunk(x, axis):
    """``x`` with the channel axis in one chunk, other axes kept unless a chunk with all
    channels would exceed ``array.chunk-size``; then they are rechunked to fit it."""
    import dask

    if x.numblocks[axis] == 1:
        merged = x
    else:
        merged = x.rechunk({axis: -1})
    limit = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    biggest = math.prod(max(c) if c else 0 for c in merged.chunks) * merged.dtype.itemsize
    if biggest > limit:
        merged = x.rechunk({a: (-1 if a == axis else "auto") for a in range(x.ndim)})
    return merged


def _task_threads(num_threads):
    # one OpenMP thread per task unless told otherwise
    return 1 if num_threads is None else num_threads


def _apply_block(block, beta, gamma, inverse, rectify, alpha, epsilon, data_format,
                 num_threads):
    from cgdn._gdn import apply_gdn
    return apply_gdn(block, beta, gamma, inverse=inverse, rectify=rectify, alpha=alpha,
                     epsilon=epsilon, data_format=data_format, num_threads=num_threads)


def apply_gdn(x, beta, gamma, *, inverse, rectify, alpha, epsilon, data_format, axis,
              num_threads):
    """A lazy Dask array: apply_gdn of every block (arguments already validated)."""
    x = _channels_one_chunk(x, axis)
    return x.map_blocks(_apply_block, np.asarray(beta), np.asarray(gamma), inverse, rectify,
                        alpha, epsilon, data_format, _task_threads(num_threads),
                        dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


def _inverse_block(block, beta, gamma, rectify, alpha, epsilon, data_format, tol, max_iter,
                   num_threads):
    from cgdn._density import gdn_inverse
    return gdn_inverse(block, beta, gamma, rectify=rectify, alpha=alpha, epsilon=epsilon,
                       data_format=data_format, tol=tol, max_iter=max_iter,
                       num_threads=num_threads)


def gdn_inverse(y, beta, gamma, *, rectify, alpha, epsilon, data_format, axis, tol,
                max_iter, num_threads):
    y = _channels_one_chunk(y, axis)
    return y.map_blocks(_inverse_block, np.asarray(beta), np.asarray(gamma), rectify, alpha,
                        epsilon, data_format, tol, max_iter, _task_threads(num_threads),
                        dtype=y.dtype, meta=np.empty((0,) * y.ndim, y.dtype))


def _logdet_block(block, beta, gamma, inverse, rectify, alpha, epsilon, data_format,
                  num_threads):
    from cgdn._density import gdn_logdet
    return gdn_logdet(block, beta, gamma, inverse=inverse, rectify=rectify, alpha=alpha,
                      epsilon=epsilon, data_format=data_format, num_threads=num_threads)


def gdn_logdet(x, beta, gamma, *, inverse, rectify, alpha, epsilon, data_format, axis,
               dtype, num_threads):
    x = _channels_one_chunk(x, axis)
    return x.map_blocks(_logdet_block, np.asarray(beta), np.asarray(gamma), inverse, rectify,
                        alpha, epsilon, data_format, _task_threads(num_threads),
                        drop_axis=axis, dtype=dtype,
                        meta=np.empty((0,) * (x.ndim - 1), dtype))
