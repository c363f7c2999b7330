"""apply_gdn's one-call path for plain arguments (the kernel module's apply_plain): the
same results as the general path, bit for bit, and every argument outside the plain case
left to the general path (which converts, copies or raises)."""
import numpy as np
import pytest

import cgdn
from cgdn import _isa
from conftest import assert_close, reference_gdn


def _params(rng, n_channels, dtype):
    beta = rng.uniform(0.1, 2.0, n_channels).astype(dtype)
    gamma = rng.uniform(0.0, 0.5, (n_channels, n_channels)).astype(dtype)
    return beta, gamma


def _plain(x, beta, gamma, *, inverse=False, rectify=False, alpha=2.0, epsilon=0.5,
           data_format="channels_last", out=None, num_threads=None):
    return _isa.kernels.apply_plain(x, beta, gamma, inverse, rectify, alpha, epsilon,
                                    data_format, out, num_threads)


def _general(x, beta, gamma, **kwargs):
    # parameters given as lists are never plain: the general path converts them (exactly:
    # tolist() keeps every float32 and float64 value)
    return cgdn.apply_gdn(x, beta.tolist(), gamma.tolist(), **kwargs)


def _shape(n_channels, data_format, spatial=(5, 67)):
    if data_format == "channels_last":
        return (2,) + spatial + (n_channels,)
    return (2, n_channels) + spatial


@pytest.mark.parametrize("n_channels", [1, 3, 4, 9, 16, 24, 64, 130])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_results_as_the_general_path(every_isa, rng, n_channels, data_format, dtype):
    x = rng.standard_normal(_shape(n_channels, data_format)).astype(dtype)
    beta, gamma = _params(rng, n_channels, dtype)
    for kwargs in ({}, {"inverse": True, "rectify": True},
                   {"alpha": 1.0, "epsilon": 1.0, "num_threads": 2},
                   {"alpha": 1.5, "epsilon": 0.7, "num_threads": 1}):
        y = _plain(x, beta, gamma, data_format=data_format, **kwargs)
        assert y is not None and y.dtype == dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, _general(x, beta, gamma, data_format=data_format,
                                                  **kwargs))
        np.testing.assert_array_equal(
            cgdn.apply_gdn(x, beta, gamma, data_format=data_format, **kwargs), y)
    assert_close(y, reference_gdn(x, beta, gamma, alpha=1.5, epsilon=0.7,
                                  data_format=data_format), dtype)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("start", [0, 1, 3, 5])
def test_same_results_wherever_the_arrays_lie(rng, data_format, start):
    # channels_first work units depend on where x starts (a head block up to a cache
    # line); out starts elsewhere
    shape = _shape(12, data_format, (16, 16))
    size = int(np.prod(shape))
    x = np.zeros(size + 16, np.float32)[start:start + size].reshape(shape)
    x[...] = rng.standard_normal(shape)
    out = np.zeros(size + 16, np.float32)[7 - start:7 - start + size].reshape(shape)
    beta, gamma = _params(rng, 12, np.float32)
    y = _plain(x, beta, gamma, data_format=data_format, out=out, num_threads=2)
    assert y is out
    np.testing.assert_array_equal(out, _general(x, beta, gamma, data_format=data_format))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_in_place(rng, data_format):
    x = rng.standard_normal(_shape(9, data_format)).astype(np.float32)
    beta, gamma = _params(rng, 9, np.float32)
    expected = _general(x, beta, gamma, data_format=data_format)
    y = _plain(x, beta, gamma, data_format=data_format, out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_overflowing_pools_take_the_careful_path(rng, data_format):
    # 3e25 squares to inf in float32: the tile goes to the careful path, the pixel's
    # result stays finite, the rest as in a clean run
    x = rng.standard_normal(_shape(5, data_format)).astype(np.float32)
    x[1, 2, 3, 4] = 3e25
    beta, gamma = _params(rng, 5, np.float32)
    y = _plain(x, beta, gamma, data_format=data_format, num_threads=2)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, _general(x, beta, gamma, data_format=data_format))
    assert_close(y, reference_gdn(x, beta, gamma, data_format=data_format), np.float32)


def test_inputs_and_parameters_unchanged(rng):
    x = rng.standard_normal((3, 8, 8, 6)).astype(np.float32)
    beta, gamma = _params(rng, 6, np.float32)
    copies = [a.copy() for a in (x, beta, gamma)]
    out = np.empty_like(x)
    assert _plain(x, beta, gamma, out=out) is out
    for before, after in zip(copies, (x, beta, gamma)):
        np.testing.assert_array_equal(before, after)


class _Sub(np.ndarray):
    pass


def _not_plain_cases(rng):
    """(description, inputs, apply_gdn keyword arguments) of calls apply_plain leaves to
    the general path, each with its outcome there: None (a result) or an exception."""
    x = rng.standard_normal((2, 4, 6, 3)).astype(np.float32)
    beta, gamma = _params(rng, 3, np.float32)
    base = {"beta": beta, "gamma": gamma}
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    return [
        ("list input", x.tolist(), base, None),
        ("float16 input", x.astype(np.float16), base, None),
        ("byte-swapped input", x.astype(">f4"), base, None),
        ("byte-swapped beta", x, {**base, "beta": beta.astype(">f4")}, None),
        ("strided input", np.repeat(x, 2, axis=2)[:, :, ::2], base, None),
        ("ndarray subclass", x.view(_Sub), base, None),
        ("float64 beta", x, {**base, "beta": beta.astype(np.float64)}, None),
        ("beta as list", x, {**base, "beta": beta.tolist()}, None),
        ("negative beta", x, {**base, "beta": -beta}, ValueError),
        ("NaN in gamma", x, {**base, "gamma": np.where(gamma > 0.2, np.nan, gamma)},
         ValueError),
        ("gamma of the wrong shape", x, {**base, "gamma": gamma[:2]}, ValueError),
        ("int flag", x, {**base, "inverse": 1}, None),
        ("NumPy bool flag", x, {**base, "rectify": np.True_}, None),
        ("int alpha", x, {**base, "alpha": 2}, None),
        ("NumPy float epsilon", x, {**base, "epsilon": np.float64(0.5)}, None),
        ("zero alpha", x, {**base, "alpha": 0.0}, ValueError),
        ("infinite epsilon", x, {**base, "epsilon": float("inf")}, ValueError),
        ("NumPy str data_format", x, {**base, "data_format": np.str_("channels_last")},
         None),
        ("unknown data_format", x, {**base, "data_format": "NHWC"}, ValueError),
        ("array data_format", x,
         {**base, "data_format": np.array(["channels_last", "channels_first"])}, ValueError),
        ("NumPy int num_threads", x, {**base, "num_threads": np.int64(2)}, None),
        ("negative num_threads", x, {**base, "num_threads": -1}, None),
        ("huge num_threads", x, {**base, "num_threads": 2 ** 40}, None),
        ("zero num_threads", x, {**base, "num_threads": 0}, ValueError),
        ("read-only out", x, {**base, "out": read_only}, ValueError),
        ("out of another dtype", x, {**base, "out": np.empty(x.shape)}, TypeError),
        ("byte-swapped out", x, {**base, "out": np.empty(x.shape, ">f4")}, TypeError),
        ("out of another shape", x, {**base, "out": np.empty(x.shape[1:], np.float32)},
         ValueError),
        ("strided out", x, {**base, "out": np.empty((2, 4, 12, 3), np.float32)[:, :, ::2]},
         None),
        ("rank 1", x[0, 0, 0], base, ValueError),
        ("empty input", x[:0], base, None),
    ]


def test_anything_else_takes_the_general_path(rng):
    for what, inputs, kwargs, raises in _not_plain_cases(rng):
        kwargs = dict(kwargs)
        beta, gamma = kwargs.pop("beta"), kwargs.pop("gamma")
        assert _plain(inputs, beta, gamma, **kwargs) is None, what
        if raises is not None:
            with pytest.raises(raises):
                cgdn.apply_gdn(inputs, beta, gamma, **kwargs)
            continue
        y = cgdn.apply_gdn(inputs, beta, gamma, **kwargs)
        data = np.asarray(inputs, dtype=np.float64)
        expected = reference_gdn(data, np.asarray(beta, np.float64),
                                 np.asarray(gamma, np.float64),
                                 inverse=bool(kwargs.get("inverse", False)),
                                 rectify=bool(kwargs.get("rectify", False)),
                                 alpha=float(kwargs.get("alpha", 2.0)),
                                 epsilon=float(kwargs.get("epsilon", 0.5)))
        assert y.shape == np.shape(inputs), what
        assert_close(y, expected, y.dtype)


def test_partial_overlap_is_left_to_the_general_path(rng):
    buf = rng.standard_normal(200).astype(np.float32)
    beta, gamma = _params(rng, 4, np.float32)
    x, out = buf[:160].reshape(40, 4), buf[8:168].reshape(40, 4)
    assert _plain(x, beta, gamma, out=out) is None
    expected = _general(x.copy(), beta, gamma)
    assert cgdn.apply_gdn(x, beta, gamma, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_run_guards_its_direct_callers(rng):
    x = rng.standard_normal((10, 4)).astype(np.float32)
    beta, gamma = _params(rng, 4, np.float32)
    run = _isa.kernels.run
    with pytest.raises(ValueError, match="dtype"):
        run(x, beta.astype(np.float64), gamma, np.empty_like(x), True, 2.0, 0.5, False,
            False, 1)
    with pytest.raises(ValueError, match="channel count"):
        run(x, beta[:3], gamma, np.empty_like(x), True, 2.0, 0.5, False, False, 1)
    buf = np.zeros(44, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        run(buf[:40].reshape(10, 4), beta, gamma, buf[4:].reshape(10, 4), True, 2.0, 0.5,
            False, False, 1)
    with pytest.raises(ValueError, match="num_threads"):
        run(x, beta, gamma, np.empty_like(x), True, 2.0, 0.5, False, False, 0)
    y = np.empty_like(x)
    assert run(x, beta, gamma, y, True, 2.0, 0.5, False, False, 1) is y
    np.testing.assert_array_equal(y, _general(x, beta, gamma))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_parameter_status_finds_every_bad_value_anywhere(dtype, size):
    # the check works on bit patterns in one branch-free pass: each kind of value at
    # every position (first, last, inside a vector, in the tail) must be seen
    from cgdn import _core
    info = np.finfo(dtype)
    base = np.linspace(0.0, 3.0, size).astype(dtype)
    assert _core.parameter_status(base) == 0
    for position in sorted({0, size // 2, size - 1}):
        for value, status in [(np.nan, 1), (-np.nan, 1), (np.inf, 1), (-np.inf, 1),
                              (-1.0, 2), (-info.smallest_subnormal, 2), (-0.0, 0),
                              (info.max, 0), (info.smallest_subnormal, 0)]:
            v = base.copy()
            v[position] = value
            assert _core.parameter_status(v) == status, (position, value)
    v = base.copy()
    v[0], v[-1] = -1.0, np.nan        # non-finite wins over negative
    assert _core.parameter_status(v) == 1
