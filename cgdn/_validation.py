"""Argument checks shared by ``apply_gdn`` and ``gdn``.

Every check raises before anything is created or written. Dtype and type problems are
``TypeError``; values and shapes are ``ValueError`` (NumPy's own split). Each message
names the argument, what was expected and what was received.
"""
import math
import numbers
from typing import NamedTuple

import numpy as np

from cgdn import _core
from cgdn._dask import is_dask_array

DATA_FORMATS = ("channels_last", "channels_first")

# dtype of the input -> dtype the kernels compute in
_COMPUTE_DTYPES = {
    np.dtype(np.float16): np.dtype(np.float32),
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
}


def _unwrap_0d(value):
    # Scalars stored as 0-d arrays (as in .npz files) behave like the scalar.
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def as_input_array(inputs, *, min_rank, name="inputs"):
    """``inputs`` as an ndarray of a supported float dtype and rank >= ``min_rank``."""
    if isinstance(inputs, np.ma.MaskedArray):
        raise TypeError(
            f"{name} must not be a masked array (the mask would be ignored); "
            f"use {name}.filled(value) or {name}.data explicitly"
        )
    x = _native_order(inputs if type(inputs) is np.ndarray else _view_foreign(inputs, name))
    if x.dtype not in _COMPUTE_DTYPES:
        hint = ""
        if x.dtype.kind in "biuf":
            hint = ("; convert with .float() or .double()" if _is_torch_tensor(inputs) else
                    "; convert with .astype(np.float32) or .astype(np.float64)")
        raise TypeError(
            f"{name} must have dtype float16, float32 or float64, got {x.dtype}{hint}"
        )
    if x.ndim < min_rank:
        raise ValueError(
            f"{name} must have at least {min_rank} dimensions, got shape {x.shape}"
        )
    return x


def _view_foreign(inputs, name):
    """An ndarray view of an array-like: the buffer protocol, ``__array__`` or
    ``__array_interface__``, else DLPack (``__dlpack__``, CPU only). A torch tensor that
    requires grad is detached first (its values are used; no graph is recorded)."""
    if _is_torch_tensor(inputs) and str(inputs.dtype) == "torch.bfloat16":
        raise TypeError(f"{name} is a torch.bfloat16 tensor, which NumPy cannot hold; convert "
                        f"with .float() (float32) or .double()")
    if getattr(inputs, "requires_grad", False) and callable(getattr(inputs, "detach", None)):
        inputs = inputs.detach()
    if (hasattr(inputs, "__dlpack__") and not hasattr(inputs, "__array__")
            and not hasattr(inputs, "__array_interface__")):
        try:
            return np.from_dlpack(inputs)
        except (TypeError, ValueError, BufferError, RuntimeError) as exc:
            raise TypeError(
                f"{name} could not be viewed through DLPack (NumPy reads CPU memory "
                f"only): {exc}"
            ) from None
    try:
        return np.asarray(inputs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    except RuntimeError as exc:   # e.g. torch: a tensor on a GPU
        raise TypeError(f"{name} could not be read as a NumPy array: {exc}") from None


def _is_torch_tensor(value):
    # without importing torch: a tensor's class lives in torch's modules
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "dtype")


def _native_order(x):
    """``x`` itself, or a copy the kernels can read, as NumPy's own functions read such
    arrays and return ordinary results:

    - floats stored in the other byte order (``'>f4'`` read from a big-endian file on a
      little-endian machine): a copy in the native order (lazy for a Dask array);
    - an ndarray whose elements do not start at a multiple of their size (``np.frombuffer``
      at an odd offset, a memmap at an odd offset, the blocks a ``dask.distributed``
      worker receives): an aligned copy. The kernels' C code reads elements through
      pointers of their type, which must be aligned (the copy's cost: see the contract
      page).
    """
    if x.dtype.kind == "f" and not x.dtype.isnative:
        native = x.dtype.newbyteorder("=")
        if native in _COMPUTE_DTYPES:
            return x.astype(native)
    if type(x) is np.ndarray and not x.flags.aligned:
        return x.copy()
    return x


def check_lazy_input(x, *, min_rank, name="inputs"):
    """Checks of a Dask array's dtype and rank (its values are not computed); returns it,
    converted lazily to the native byte order if it is not in it."""
    x = _native_order(x)
    if x.dtype not in _COMPUTE_DTYPES:
        raise TypeError(f"{name} must have dtype float16, float32 or float64, got {x.dtype}")
    if x.ndim < min_rank:
        raise ValueError(f"{name} must have at least {min_rank} dimensions, got shape {x.shape}")
    if any(isinstance(d, float) and math.isnan(d) for d in x.shape):
        raise ValueError(f"{name} has unknown chunk sizes {x.shape}: call "
                         f"{name}.compute_chunk_sizes() first")
    return x


class Input(NamedTuple):
    """An entry point's checked input: the array (an ndarray the kernels can read, or a
    Dask array), whether it is lazy, its layout, channel axis and channel count."""
    x: object
    lazy: bool
    data_format: str
    axis: int
    n_channels: int


def read_input(inputs, *, min_rank, data_format, name="inputs", need_channels=True):
    """The input step every entry point shares: ``inputs`` read as an ndarray (or checked
    as a Dask array), ``data_format`` checked, and, with ``need_channels``, at least one
    channel required."""
    lazy = is_dask_array(inputs)
    if lazy:
        x = check_lazy_input(inputs, min_rank=min_rank, name=name)
    else:
        x = as_input_array(inputs, min_rank=min_rank, name=name)
    data_format = check_data_format(data_format)
    axis = channel_axis(data_format, x.ndim)
    if need_channels and x.shape[axis] == 0:
        raise ValueError(f"{name} must have at least one channel ({data_format}), got shape "
                         f"{x.shape}")
    return Input(x, lazy, data_format, axis, x.shape[axis])


def layout_hint(shape, data_format, n_channels):
    """``'; axis k has C: is the input channels_first? (...)'`` when the other layout's
    channel axis of ``shape`` has ``n_channels``, else ''. The first error a PyTorch user
    meets: NCHW arrays with the default channels_last."""
    if len(shape) <= 2 or n_channels is None:
        return ""
    other, other_format = ((1, "channels_first") if data_format == "channels_last"
                           else (len(shape) - 1, "channels_last"))
    if shape[other] != n_channels:
        return ""
    return (f"; axis {other} has {n_channels}: is the input {other_format}? "
            f"(data_format={other_format!r})")


def check_parameters(beta, gamma, source, dtype):
    """``beta`` (C,) and ``gamma`` (C, C) for the input ``source`` (an :class:`Input`)
    through :func:`check_parameter`; a shape error says when the parameters would fit
    the input in the other layout."""
    n = source.n_channels
    checked = []
    for name, value, shape in (("beta", beta, (n,)), ("gamma", gamma, (n, n))):
        try:
            checked.append(check_parameter(name, value, shape, dtype))
        except ValueError as exc:
            got = _shape_of(value)
            if got and got != shape:
                hint = layout_hint(source.x.shape, source.data_format, got[0])
                if hint:
                    raise ValueError(f"{exc}{hint}") from None
            raise
    return tuple(checked)


def _shape_of(value):
    try:
        return np.shape(value)
    except (ValueError, TypeError):   # ragged nested sequences
        return None


def check_lazy_extras(out):
    if out is not None:
        raise TypeError("out= cannot be used with a Dask array: the result is a lazy Dask "
                        "array (store it with dask.array.store or .compute())")


def compute_dtype(dtype):
    """The dtype the kernels compute in for an input of ``dtype`` (float16 -> float32)."""
    found = _COMPUTE_DTYPES.get(dtype) if isinstance(dtype, np.dtype) else None
    return found if found is not None else _COMPUTE_DTYPES[np.dtype(dtype)]


def check_data_format(data_format):
    if type(data_format) is str and data_format in DATA_FORMATS:
        return data_format   # the common case, before the generic checks
    data_format = _unwrap_0d(data_format)
    if isinstance(data_format, str) and data_format in DATA_FORMATS:
        return str(data_format)
    raise ValueError(
        f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
    )


def channel_axis(data_format, ndim):
    return ndim - 1 if data_format == "channels_last" else 1


def check_flag(name, value):
    """A Python bool from ``value`` (bool, NumPy bool, or the ints 0 and 1)."""
    if value is False or value is True:
        return value
    value = _unwrap_0d(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {value!r}")


def check_positive_real(name, value, *, allow_zero=False):
    """``value`` as a finite Python float that is > 0 (>= 0 with ``allow_zero``)."""
    if type(value) is not float:   # the common case skips the generic checks
        value = _unwrap_0d(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = float(value)
    bound_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and bound_ok):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {expected}, got {value!r}")
    return value


def as_real_array(value, what):
    """``np.asarray(value)`` of an integer or float dtype; ``what`` names it in errors."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be a rectangular array of numbers: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_parameter(name, value, shape, dtype):
    """``value`` as a C-contiguous ``dtype`` array: finite, >= 0, of ``shape``.

    The result may be ``value`` itself (never written to) when it already qualifies.
    """
    if (type(value) is np.ndarray and value.dtype == dtype and value.shape == tuple(shape)
            and value.flags.c_contiguous and value.flags.aligned):
        arr = value   # already in the kernels' form: only the values are left to check
    else:
        arr = as_real_array(_unwrap_0d(value) if np.ndim(value) == 0 else value, name)
        if arr.shape != tuple(shape):
            raise ValueError(
                f"{name} must have shape {tuple(shape)} for {shape[0]} channels, "
                f"got {arr.shape}"
            )
        if arr.dtype != dtype:
            with np.errstate(over="ignore", invalid="ignore"):
                arr = arr.astype(dtype)
        arr = np.ascontiguousarray(arr)
        if not arr.flags.aligned:   # np.frombuffer at an odd offset: an aligned copy
            arr = arr.copy()
    status = _core.parameter_status(arr.reshape(-1)) if arr.size else 0
    if status == 1:
        raise ValueError(f"{name} must be finite (in {dtype}), got non-finite values")
    if status == 2:
        raise ValueError(f"{name} must be non-negative, got a minimum of {arr.min()!s}")
    return arr


def check_out(out, shape, dtype):
    """Check ``out`` (or None) is a writeable ndarray of ``shape`` and ``dtype``."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    if overlaps_itself(out):
        raise ValueError(
            "out must not overlap itself: it has a zero stride or interleaved strides, so "
            "several results would land on the same memory (pass a fresh array or None)")
    return out


def overlaps_itself(a):
    """True if two elements of ``a`` share a byte (a zero stride, an ``as_strided`` view).

    The usual layouts are decided from the strides alone: axes sorted by stride, each
    stride must step over everything the smaller axes span. Only arrays failing that
    test (interleaved strides, rare outside ``as_strided``) have their element offsets
    listed and compared.
    """
    if a.size <= 1:
        return False
    span = a.itemsize
    for stride, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if stride < span:
            break
        span += stride * (n - 1)
    else:
        return False
    offsets = np.zeros((), np.int64)
    for stride, n in zip(a.strides, a.shape):
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * stride)
    offsets = np.sort(offsets, axis=None)
    return bool(np.any(np.diff(offsets) < a.itemsize))
