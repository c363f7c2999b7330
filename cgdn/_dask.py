"""cgdn on Dask arrays: the same calls, lazily, chunk by chunk.

Dask stays optional: nothing here imports it until a Dask array is passed (a Dask array
can only exist once dask.array is imported), so ``import cgdn`` never loads it.

Rules (documented in the README, "Scaling out"):
- the result is chunked like the input except that the channel axis is one chunk; if one
  chunk with all channels would exceed Dask's ``array.chunk-size`` setting, the other axes
  are rechunked ("auto") to fit it;
- parameters travel inside the task graph as NumPy arrays, never through a store: ``gdn``
  and layers resolve their variables in the caller's store when the graph is built;
- every function runs on blocks through :func:`map_channel_blocks`, which takes the
  module-level function to run per block (this module imports nothing from cgdn);
- inside a task the kernels use one thread unless ``num_threads`` is given: tasks
  already run concurrently (one per worker thread), and more threads per task
  would oversubscribe the cores.
"""
import functools
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


def map_channel_blocks(fn, x, beta, gamma, *, axis, num_threads, drop_axis=False,
                       dtype=None, **settings):
    """A lazy Dask array: ``fn(block, beta, gamma, num_threads=..., **settings)`` of every
    block of ``x`` with the channel axis ``axis`` in one chunk (arguments already checked).

    ``fn`` is a module-level function (tasks travel to worker processes by reference);
    ``num_threads`` is the caller's checked count or None (one thread per task);
    ``drop_axis`` says ``fn`` removes the channel axis; ``dtype`` is the result's (default
    x's).
    """
    x = _channels_one_chunk(x, axis)
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    ndim = x.ndim - 1 if drop_axis else x.ndim
    task = functools.partial(fn, num_threads=1 if num_threads is None else num_threads,
                             **settings)
    extra = {"drop_axis": axis} if drop_axis else {}
    return x.map_blocks(task, np.asarray(beta), np.asarray(gamma), dtype=dtype,
                        meta=np.empty((0,) * ndim, dtype), **extra)
