"""apply_gdn: closed-form oracles, dtypes, layouts, out=, strides, empties, errors."""
import numpy as np
import pytest

import cgdn
from conftest import assert_close, reference_gdn

FORMATS = ["channels_last", "channels_first"]
SHAPES = {
    2: (7, 5),
    3: (2, 9, 5),
    4: (2, 6, 7, 5),
    5: (1, 3, 4, 5, 5),
    6: (2, 2, 3, 2, 3, 5),
}


def _channels(shape, data_format):
    return shape[-1] if data_format == "channels_last" or len(shape) == 2 else shape[1]


def _random_params(rng, n_channels, dtype=np.float64):
    beta = rng.uniform(0.1, 2.0, n_channels).astype(dtype)
    gamma = rng.uniform(0.0, 0.5, (n_channels, n_channels)).astype(dtype)  # non-symmetric
    return beta, gamma


@pytest.mark.parametrize("rank", sorted(SHAPES))
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_closed_form_defaults(rng, rank, data_format, dtype):
    # beta = 1, gamma = 0.1 I: GDN is x / sqrt(1 + 0.1 x^2), IGDN x * sqrt(1 + 0.1 x^2).
    x = (rng.standard_normal(SHAPES[rank]) * 3).astype(dtype)
    c = _channels(x.shape, data_format)
    beta, gamma = np.ones(c), 0.1 * np.eye(c)
    y = cgdn.apply_gdn(x, beta, gamma, data_format=data_format)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, x / np.sqrt(1 + 0.1 * x.astype(np.float64) ** 2), dtype)
    yi = cgdn.apply_gdn(x, beta, gamma, inverse=True, data_format=data_format)
    assert_close(yi, x * np.sqrt(1 + 0.1 * x.astype(np.float64) ** 2), dtype)


@pytest.mark.parametrize("rank", sorted(SHAPES))
@pytest.mark.parametrize("data_format", FORMATS)
def test_closed_form_simplified(rng, rank, data_format):
    x = rng.standard_normal(SHAPES[rank]).astype(np.float32)
    c = _channels(x.shape, data_format)
    y = cgdn.apply_gdn(x, np.ones(c), 0.1 * np.eye(c), alpha=1, epsilon=1,
                       data_format=data_format)
    assert_close(y, x / (1 + 0.1 * np.abs(x.astype(np.float64))), np.float32)


@pytest.mark.parametrize("n_channels", [1, 2, 3, 8, 9, 16, 64, 130])
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("inverse", [False, True])
def test_matches_reference_across_channel_counts(rng, n_channels, data_format, inverse):
    # Covers both the hand-mixed (small C) and the BLAS path, and several tiles.
    shape = (3, 700, n_channels) if data_format == "channels_last" else (3, n_channels, 700)
    x = rng.standard_normal(shape)
    beta, gamma = _random_params(rng, n_channels)
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        y = cgdn.apply_gdn(xd, beta, gamma, inverse=inverse, data_format=data_format)
        assert y.dtype == dtype
        assert_close(y, reference_gdn(xd, beta, gamma, inverse=inverse,
                                      data_format=data_format), dtype)


@pytest.mark.parametrize("alpha,epsilon", [(2, 0.5), (1, 1), (1.5, 0.7), (2, 1), (1, 0.5),
                                           (0.5, 2.0), (3, 0.25)])
@pytest.mark.parametrize("rectify", [False, True])
@pytest.mark.parametrize("data_format", FORMATS)
def test_exponents_and_rectify(rng, alpha, epsilon, rectify, data_format):
    x = rng.standard_normal((2, 5, 6, 12))
    beta, gamma = _random_params(rng, 12 if data_format == "channels_last" else 5)
    kwargs = dict(alpha=alpha, epsilon=epsilon, rectify=rectify, data_format=data_format)
    for inverse in (False, True):
        y = cgdn.apply_gdn(x, beta, gamma, inverse=inverse, **kwargs)
        ref = reference_gdn(x, beta, gamma, inverse=inverse, **kwargs)
        assert np.all(np.isfinite(y))  # |x|**alpha, never NaN for negative x
        assert_close(y, ref, np.float64)
    if rectify:
        assert np.all(y[x <= 0] == 0)


def test_gamma_orientation_is_tf(rng):
    # gamma[j, i]: input channel j feeds output channel i.
    x = np.array([[2.0, 0.0]])
    gamma = np.array([[0.0, 3.0], [0.0, 0.0]])  # channel 0 feeds channel 1 only
    y = cgdn.apply_gdn(np.array([[2.0, 1.0]]), [1.0, 1.0], gamma)
    np.testing.assert_allclose(y, [[2.0, 1.0 / np.sqrt(1 + 3 * 4)]])
    assert cgdn.apply_gdn(x, [1.0, 1.0], gamma)[0, 0] == 2.0


def test_float16_computed_in_float32(rng):
    x = rng.standard_normal((2, 4, 4, 6)).astype(np.float16)
    beta, gamma = _random_params(rng, 6)
    y = cgdn.apply_gdn(x, beta, gamma)
    assert y.dtype == np.float16
    expected = cgdn.apply_gdn(x.astype(np.float32), beta, gamma).astype(np.float16)
    np.testing.assert_array_equal(y, expected)
    out = np.empty_like(x)
    assert cgdn.apply_gdn(x, beta, gamma, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_array_likes_and_parameter_dtypes():
    y = cgdn.apply_gdn([[1.0, 2.0], [3.0, 4.0]], (1, 1), [[0, 0], [0, 0]])
    np.testing.assert_array_equal(y, [[1.0, 2.0], [3.0, 4.0]])
    x32 = np.ones((2, 3), np.float32)
    y = cgdn.apply_gdn(x32, np.ones(3, np.float64), np.eye(3, dtype=np.float16))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 1 / np.sqrt(2), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_byte_swapped_input_is_read_as_numbers(rng, dtype):
    # an array stored in the other byte order (e.g. '>f4' from a big-endian file) holds
    # the same numbers: computed from a native copy, a native result, the input unchanged
    x = rng.standard_normal((2, 3, 6, 3)).astype(dtype)   # 3 channels in either layout
    swapped = x.astype(x.dtype.newbyteorder("S"))
    before = swapped.copy()
    beta, gamma = _random_params(rng, 3)
    expected = cgdn.apply_gdn(x, beta, gamma)
    for data_format in FORMATS:
        y = cgdn.apply_gdn(swapped, beta, gamma, data_format=data_format)
        assert y.dtype == np.dtype(dtype) and y.dtype.isnative
        np.testing.assert_array_equal(
            y, cgdn.apply_gdn(x, beta, gamma, data_format=data_format))
    np.testing.assert_array_equal(swapped, before)
    assert swapped.dtype == before.dtype
    layer = cgdn.GDN()
    np.testing.assert_array_equal(layer(swapped), layer(x))
    store = cgdn.ParameterStore()
    np.testing.assert_array_equal(cgdn.gdn(swapped, name="g", store=store),
                                  cgdn.gdn(x, name="g", reuse=True, store=store))
    np.testing.assert_array_equal(cgdn.gdn_logdet(swapped, beta, gamma),
                                  cgdn.gdn_logdet(x, beta, gamma))
    grads = cgdn.gdn_vjp(swapped, beta, gamma, swapped)
    for got, want in zip(grads, cgdn.gdn_vjp(x, beta, gamma, x)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(expected, cgdn.apply_gdn(x, beta, gamma))
    # out= must be native: no result is written through a byte swap
    with pytest.raises(TypeError, match="out must have dtype"):
        cgdn.apply_gdn(swapped, beta, gamma, out=swapped)
    np.testing.assert_array_equal(swapped, before)
    with pytest.raises(TypeError, match="inputs must have dtype float16, float32 or float64"):
        cgdn.apply_gdn(np.ones((2, 3), ">i4"), beta, gamma)


def test_zero_beta_and_gamma_allowed():
    y = cgdn.apply_gdn(np.array([[2.0, -3.0]]), [0.0, 0.0], np.eye(2))
    np.testing.assert_allclose(y, [[1.0, -1.0]])


# --- out=, aliasing, strides ------------------------------------------------------------

@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place(rng, data_format, dtype):
    x = rng.standard_normal((2, 20, 30, 24)).astype(dtype)
    c = _channels(x.shape, data_format)
    beta, gamma = _random_params(rng, c)
    expected = cgdn.apply_gdn(x, beta, gamma, data_format=data_format)
    buf = x.copy()
    result = cgdn.apply_gdn(buf, beta, gamma, data_format=data_format, out=buf)
    assert result is buf
    np.testing.assert_array_equal(buf, expected)


def test_out_separate_and_input_unchanged(rng):
    x = rng.standard_normal((4, 5, 7))
    before = x.copy()
    beta, gamma = _random_params(rng, 7)
    out = np.full_like(x, np.nan)
    result = cgdn.apply_gdn(x, beta, gamma, out=out)
    assert result is out
    np.testing.assert_array_equal(x, before)
    assert_close(out, reference_gdn(x, beta, gamma), np.float64)


def _placed(a, offset):
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (offset - buf.ctypes.data) % 64
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_channels", [3, 24, 130])
def test_results_do_not_depend_on_where_the_input_lies(rng, dtype, n_channels):
    # channels_first tiles start where the input's cache lines do (a short first block
    # per image when the input does not start on a line): the same bits for any
    # placement, in place and not, with an overflowing pixel taking the careful path
    x = rng.standard_normal((2, n_channels, 24, 40)).astype(dtype)
    x[1, 0, 3, 5] = np.finfo(dtype).max / 4
    beta, gamma = _random_params(rng, n_channels, dtype)
    kw = dict(data_format="channels_first", num_threads=2)
    expected = cgdn.apply_gdn(_placed(x, 0), beta, gamma, **kw)
    assert np.isfinite(expected).all()
    for offset in (dtype().itemsize, 16, 40):
        np.testing.assert_array_equal(cgdn.apply_gdn(_placed(x, offset), beta, gamma, **kw),
                                      expected)
        inplace = _placed(x, offset)
        cgdn.apply_gdn(inplace, beta, gamma, out=inplace, **kw)
        np.testing.assert_array_equal(inplace, expected)


@pytest.mark.parametrize("shift", [1, 5, -3])
def test_partial_overlap(rng, shift):
    base = rng.standard_normal(40 * 6 + 60)
    beta, gamma = _random_params(rng, 6)
    start = 30
    x = base[start:start + 240].reshape(40, 6)
    out = base[start + shift:start + shift + 240].reshape(40, 6)
    expected = reference_gdn(x.copy(), beta, gamma)
    cgdn.apply_gdn(x, beta, gamma, out=out)
    assert_close(base[start + shift:start + shift + 240].reshape(40, 6), expected, np.float64)


def test_in_place_through_noncontiguous_view(rng):
    big = rng.standard_normal((6, 8, 10))
    view = big[:, ::2, ::-1]
    expected = reference_gdn(view, np.ones(10), 0.2 * np.ones((10, 10)))
    untouched = big[:, 1::2].copy()
    cgdn.apply_gdn(view, np.ones(10), 0.2 * np.ones((10, 10)), out=view)
    assert_close(view, expected, np.float64)
    np.testing.assert_array_equal(big[:, 1::2], untouched)


@pytest.mark.parametrize("data_format", FORMATS)
def test_strided_and_transposed_inputs(rng, data_format):
    base = rng.standard_normal((4, 12, 14, 10))
    beta, gamma = _random_params(rng, 10 if data_format == "channels_last" else 14)
    views = [base[::2, 1::3, ::-1], base.transpose(0, 2, 1, 3)[:, :, ::-2],
             np.asfortranarray(base)]
    if data_format == "channels_first":
        views = [base[::2, 1::3, ::-1].transpose(0, 2, 1, 3),
                 np.asfortranarray(base.transpose(0, 2, 1, 3))]
    for view in views:
        c = view.shape[-1] if data_format == "channels_last" else view.shape[1]
        b, g = beta[:c], gamma[:c, :c]
        assert_close(cgdn.apply_gdn(view, b, g, data_format=data_format),
                     reference_gdn(view, b, g, data_format=data_format), np.float64)


def test_noncontiguous_out(rng):
    x = rng.standard_normal((5, 9))
    holder = np.zeros((5, 18))
    out = holder[:, ::2]
    cgdn.apply_gdn(x, np.ones(9), 0.1 * np.eye(9), out=out)
    assert_close(out, reference_gdn(x, np.ones(9), 0.1 * np.eye(9)), np.float64)
    assert np.all(holder[:, 1::2] == 0)


def test_read_only_input(rng):
    x = rng.standard_normal((3, 4, 5))
    x.flags.writeable = False
    y = cgdn.apply_gdn(x, np.ones(5), 0.1 * np.eye(5))
    assert y.flags.writeable
    assert_close(y, reference_gdn(x, np.ones(5), 0.1 * np.eye(5)), np.float64)


@pytest.mark.parametrize("shape,data_format", [
    ((0, 5, 3), "channels_last"), ((2, 0, 3), "channels_last"), ((0, 3), "channels_last"),
    ((0, 3, 5), "channels_first"), ((2, 3, 0, 4), "channels_first"),
])
def test_empty_inputs(shape, data_format):
    x = np.empty(shape, np.float32)
    c = _channels(shape, data_format)
    y = cgdn.apply_gdn(x, np.ones(c), np.eye(c), data_format=data_format)
    assert y.shape == shape and y.dtype == np.float32
    out = np.empty(shape, np.float32)
    assert cgdn.apply_gdn(x, np.ones(c), np.eye(c), data_format=data_format, out=out) is out


def test_rank2_channels_first_is_batch_by_channels(rng):
    x = rng.standard_normal((6, 4))
    beta, gamma = _random_params(rng, 4)
    np.testing.assert_array_equal(cgdn.apply_gdn(x, beta, gamma, data_format="channels_first"),
                                  cgdn.apply_gdn(x, beta, gamma))


def test_nan_and_inf_stay_in_their_position(rng):
    x = rng.standard_normal((4, 300, 12)).astype(np.float32)
    beta, gamma = _random_params(rng, 12)
    clean = cgdn.apply_gdn(x, beta, gamma)
    x[1, 7, 3] = np.nan
    x[2, 290, 0] = np.inf
    x[3, 0, 11] = -np.inf
    y = cgdn.apply_gdn(x, beta, gamma)
    bad = np.zeros(x.shape[:2], bool)
    bad[1, 7] = bad[2, 290] = bad[3, 0] = True
    np.testing.assert_array_equal(y[~bad], clean[~bad])
    assert np.isnan(y[1, 7, 3])
