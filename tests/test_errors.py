"""Every documented refusal of apply_gdn (its Raises section): the right exception, naming the argument."""
import numpy as np
import pytest

import cgdn

X = np.ones((2, 3, 4), np.float32)
B = np.ones(4)
G = 0.1 * np.eye(4)


def _call(**overrides):
    kwargs = dict(inputs=X, beta=B, gamma=G)
    kwargs.update(overrides)
    return cgdn.apply_gdn(kwargs.pop("inputs"), kwargs.pop("beta"), kwargs.pop("gamma"),
                          **kwargs)


@pytest.mark.parametrize("value", ["NHWC", "channels-last", None, 1, "CHANNELS_LAST"])
def test_bad_data_format(value):
    with pytest.raises(ValueError, match="data_format must be 'channels_last' or"):
        _call(data_format=value)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                                   object, np.longdouble, "U3"])
def test_bad_input_dtype(dtype):
    with pytest.raises(TypeError, match="inputs must have dtype float16, float32 or float64"):
        _call(inputs=np.ones((2, 4)).astype(dtype))


def test_int_input_suggests_astype():
    with pytest.raises(TypeError, match=r"astype\(np.float32\)"):
        _call(inputs=np.ones((2, 4), np.int64))


@pytest.mark.parametrize("inputs", [np.float32(1.0), np.ones(4, np.float32), 3.0, [1.0]])
def test_rank_below_two(inputs):
    with pytest.raises(ValueError, match="inputs must have at least 2 dimensions"):
        _call(inputs=inputs, beta=np.ones(1), gamma=np.eye(1))


def test_ragged_input():
    with pytest.raises(ValueError, match="inputs must be a rectangular array"):
        _call(inputs=[[1.0, 2.0], [3.0]])


def test_masked_input_refused():
    with pytest.raises(TypeError, match="masked"):
        _call(inputs=np.ma.masked_array(np.ones((2, 4)), mask=False))


@pytest.mark.parametrize("shape,data_format", [((2, 0), "channels_last"),
                                               ((2, 3, 0), "channels_last"),
                                               ((2, 0, 3), "channels_first")])
def test_zero_channels(shape, data_format):
    with pytest.raises(ValueError, match="at least one channel"):
        _call(inputs=np.ones(shape), beta=np.ones(0), gamma=np.ones((0, 0)),
              data_format=data_format)


@pytest.mark.parametrize("name,value,exc,match", [
    ("beta", np.ones(3), ValueError, r"beta must have shape \(4,\)"),
    ("beta", np.ones((4, 1)), ValueError, r"beta must have shape"),
    ("beta", -np.ones(4), ValueError, "beta must be non-negative"),
    ("beta", np.array([1, 1, np.nan, 1]), ValueError, "beta must be finite"),
    ("beta", np.array([1, 1, np.inf, 1]), ValueError, "beta must be finite"),
    # a non-finite value is reported even after a negative one
    ("beta", np.array([-1, 1, np.nan, 1]), ValueError, "beta must be finite"),
    ("beta", np.array([1, 1, 1, -1e-30]), ValueError, r"non-negative, got a minimum of -1e-30"),
    ("beta", np.ones(4, complex), TypeError, "beta must hold real numbers"),
    ("beta", np.ones(4, bool), TypeError, "beta must hold real numbers"),
    ("beta", [1, 1, "a", 1], TypeError, "beta must hold real numbers"),
    ("gamma", np.eye(3), ValueError, r"gamma must have shape \(4, 4\)"),
    ("gamma", np.ones(4), ValueError, r"gamma must have shape \(4, 4\)"),
    ("gamma", -np.eye(4), ValueError, "gamma must be non-negative"),
    ("gamma", np.full((4, 4), np.nan), ValueError, "gamma must be finite"),
    ("gamma", np.full((4, 4), 1e39), ValueError, r"gamma must be finite \(in float32\)"),
])
def test_bad_parameters(name, value, exc, match):
    with pytest.raises(exc, match=match):
        _call(**{name: value})


@pytest.mark.parametrize("name", ["alpha", "epsilon"])
@pytest.mark.parametrize("value,exc", [(0, ValueError), (-1.0, ValueError),
                                       (np.inf, ValueError), (np.nan, ValueError),
                                       ("2", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_exponents(name, value, exc):
    with pytest.raises(exc, match=name):
        _call(**{name: value})


@pytest.mark.parametrize("name", ["inverse", "rectify"])
@pytest.mark.parametrize("value", ["False", 2, 0.5, None])
def test_bad_flags(name, value):
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        _call(**{name: value})


def test_flags_accept_numpy_bools_and_0d_arrays():
    a = _call(inverse=np.True_)
    b = _call(inverse=np.array(True))
    c = _call(inverse=True)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("out,exc,match", [
    (np.empty((2, 3, 4), np.float64), TypeError, "out must have dtype float32"),
    (np.empty((2, 3, 5), np.float32), ValueError, r"out must have shape \(2, 3, 4\)"),
    ([[0.0]], TypeError, "out must be a numpy.ndarray"),
])
def test_bad_out(out, exc, match):
    with pytest.raises(exc, match=match):
        _call(out=out)


def test_read_only_out_not_written():
    out = np.zeros((2, 3, 4), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        _call(out=out)
    assert np.all(out == 0)


@pytest.mark.parametrize("strides", [(0, 16, 4), (48, 0, 4), (4, 4, 4), (48, 16, 2)])
def test_self_overlapping_out_refused(strides):
    # several results on one address (a zero stride; strides shorter than what they step
    # over): the answer would depend on which thread wrote last
    base = np.zeros(40, np.float32)
    out = np.lib.stride_tricks.as_strided(base, (2, 3, 4), strides)
    with pytest.raises(ValueError, match="out must not overlap itself"):
        _call(out=out)
    assert np.all(base == 0)


def test_interleaved_but_disjoint_out_accepted():
    # strides (8, 12) interleave rows without sharing an element: a valid out
    base = np.full(40, np.nan, np.float32)
    out = np.lib.stride_tricks.as_strided(base, (3, 3), (8, 12))
    y = cgdn.apply_gdn(np.ones((3, 3), np.float32), np.ones(3), np.eye(3), out=out)
    assert y is out
    np.testing.assert_allclose(out, 1 / np.sqrt(2), rtol=1e-6)


def test_failed_call_writes_nothing():
    out = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError):
        _call(out=out, beta=-np.ones(4))
    assert np.all(out == 0)


@pytest.mark.parametrize("value,exc", [(0, ValueError), (1.5, TypeError), ("2", TypeError),
                                       (True, TypeError)])
def test_bad_num_threads(value, exc):
    with pytest.raises(exc, match="num_threads"):
        _call(num_threads=value)


def test_no_cython_internal_errors_reach_users():
    # Buffers that Cython would refuse (read-only, non-contiguous, odd dtypes) are handled
    # or refused by cgdn's own checks, never by "Buffer dtype mismatch" and the like.
    x = np.ones((4, 6, 4), np.float32)[:, ::2]
    x.flags.writeable = False
    y = _call(inputs=x, beta=np.ones(4, np.int8), gamma=np.eye(4, dtype=np.float16))
    assert y.dtype == np.float32 and y.shape == (4, 3, 4)


_ENTRY_POINTS = {
    "apply_gdn": lambda x, b, g, **kw: cgdn.apply_gdn(x, b, g, **kw),
    "gdn_logdet": lambda x, b, g, **kw: cgdn.gdn_logdet(x, b, g, **kw),
    "gdn_inverse": lambda x, b, g, **kw: cgdn.gdn_inverse(x, b, g, **kw),
    "gdn_vjp": lambda x, b, g, **kw: cgdn.gdn_vjp(x, b, g, x, **kw),
}


@pytest.mark.parametrize("entry,dask", [(e, False) for e in sorted(_ENTRY_POINTS)]
                         + [(e, True) for e in sorted(_ENTRY_POINTS) if e != "gdn_vjp"])
def test_layout_hint_when_the_other_axis_matches(entry, dask):
    # NCHW arrays with the default channels_last: the parameters fit axis 1, and the
    # message says so instead of only blaming beta (and the other way round)
    call = _ENTRY_POINTS[entry]
    b, g = np.ones(16, np.float32), 0.1 * np.eye(16, dtype=np.float32)
    nchw, nhwc = np.ones((1, 16, 8, 8), np.float32), np.ones((1, 8, 8, 16), np.float32)
    if dask:   # (gdn_vjp takes no Dask arrays lazily)
        da = pytest.importorskip("dask.array")
        nchw, nhwc = da.from_array(nchw), da.from_array(nhwc)
    with pytest.raises(ValueError, match=r"beta must have shape \(8,\).*axis 1 has 16: is the "
                                         r"input channels_first\? \(data_format='channels_"):
        call(nchw, b, g)
    with pytest.raises(ValueError, match=r"axis 3 has 16: is the input channels_last\?"):
        call(nhwc, b, g, data_format="channels_first")
    # gamma alone mismatching is hinted as well; no hint where no axis fits
    with pytest.raises(ValueError, match=r"gamma must have shape \(8, 8\).*channels_first"):
        call(nchw, np.ones(8, np.float32), g)
    with pytest.raises(ValueError, match=r"got \(5,\)$"):
        call(nchw, np.ones(5, np.float32), g)


def test_layout_hint_from_layers_and_gdn():
    nchw = np.ones((1, 16, 8, 8), np.float32)
    layer = cgdn.GDN(16)
    layer(np.ones((1, 4, 4, 16), np.float32))
    with pytest.raises(ValueError, match=r"expects 16 channels on axis 3 .*axis 1 has 16: is "
                                         r"the input channels_first\?"):
        layer(nchw)
    store = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 4, 4, 16), np.float32), name="a", store=store)
    with pytest.raises(ValueError, match=r"16 on axis 1: are they channels_first\?"):
        cgdn.gdn(nchw, name="a", reuse=True, store=store)


class _TorchLike:
    """Stands for a torch tensor (its class lives in module 'torch'), as NumPy sees it."""
    __module__ = "torch"

    def __init__(self, dtype, array=None):
        self.dtype, self._array = dtype, array

    def __array__(self, dtype=None, copy=None):
        if self._array is None:
            raise TypeError(f"Got unsupported ScalarType {self.dtype}")
        return self._array


def test_torch_tensors_are_told_torch_conversions():
    with pytest.raises(TypeError, match=r"torch.bfloat16 tensor.*\.float\(\)"):
        _call(inputs=_TorchLike("torch.bfloat16"))
    with pytest.raises(TypeError, match=r"got int64; convert with \.float\(\) or \.double\(\)"):
        _call(inputs=_TorchLike("torch.int64", np.ones((2, 4), np.int64)))


def test_real_torch_tensors_are_told_torch_conversions():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"torch.bfloat16 tensor.*\.float\(\)"):
        _call(inputs=torch.ones((2, 4), dtype=torch.bfloat16))
    with pytest.raises(TypeError, match=r"got int32; convert with \.float\(\)"):
        _call(inputs=torch.ones((2, 4), dtype=torch.int32))
