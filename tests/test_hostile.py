"""Hostile inputs: extreme magnitudes, non-finite values, odd array types."""
import numpy as np
import pytest

import cgdn
from conftest import assert_close, reference_gdn

# Every test here runs on every kernel variant this machine runs.
pytestmark = pytest.mark.usefixtures("every_isa")


def _stable_classic(x, beta, g, inverse=False):
    # x / sqrt(beta + g x^2) for a diagonal gamma = g * I, evaluated without overflow.
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    s = np.where(a > 0, a, 1.0)
    with np.errstate(over="ignore"):  # beta / s**2 -> 0 for huge s is what we want
        root = s * np.sqrt(beta / s**2 + g * (a / s) ** 2)
    return x * root if inverse else x / root


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("value", [1e30, -3e25, 1e20, 3e38])
@pytest.mark.parametrize("n_channels", [1, 4, 12, 40, 130])
def test_huge_float32_gives_the_finite_answer(value, data_format, n_channels):
    # Every mixer (shared lanes, one panel, several panels, channels_first blocks) must
    # notice the overflowed pool, whichever channel holds it.
    x = np.full((2, 5, 5, n_channels), 0.5, np.float32)
    x[1, 2, 3, n_channels // 2] = value
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = cgdn.apply_gdn(x, np.ones(n_channels), 0.1 * np.eye(n_channels),
                       data_format=data_format)
    assert np.all(np.isfinite(y))
    assert_close(y, _stable_classic(x, 1.0, 0.1), np.float32)


def _log_domain(x, beta, gamma, inverse):
    # float64 GDN with the pool summed as logsumexp: no term overflows or underflows
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore"):
        terms = np.log(gamma)[None] + 2 * np.log(np.abs(x))[:, :, None]     # (P, j, i)
        terms = np.concatenate([terms, np.broadcast_to(np.log(beta), (len(x), 1, len(beta)))],
                               axis=1)
    top = terms.max(axis=1)
    log_root = 0.5 * (top + np.log(np.exp(terms - top[:, None]).sum(axis=1)))
    with np.errstate(over="ignore"):
        return x * np.exp(log_root if inverse else -log_root)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype,scale", [(np.float32, 1e25), (np.float64, 1e200)])
@pytest.mark.parametrize("n_channels", [3, 16, 70])
@pytest.mark.parametrize("inverse", [False, True])
def test_every_tile_overflowing(rng, data_format, dtype, scale, n_channels, inverse):
    # Every pool overflows (a dense gamma, inputs of both signs, zeros, one -0.0): every
    # tile takes the careful path, on any number of threads, with the same bits.
    x = (rng.standard_normal((2, 9, 11, n_channels)) * scale).astype(dtype)
    x[0, 0, 0] = 0
    x[0, 1, 1, 0] = -0.0
    beta = rng.uniform(0.1, 1.0, n_channels).astype(dtype)
    gamma = rng.uniform(0, 0.1, (n_channels, n_channels)).astype(dtype)
    gamma[:, 0] = 0                         # an output channel pooling only beta
    xl = x if data_format == "channels_last" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    one = cgdn.apply_gdn(xl, beta, gamma, inverse=inverse, data_format=data_format,
                         num_threads=1)
    two = cgdn.apply_gdn(xl, beta, gamma, inverse=inverse, data_format=data_format,
                         num_threads=2)
    np.testing.assert_array_equal(one, two)
    got = one if data_format == "channels_last" else one.transpose(0, 2, 3, 1)
    with np.errstate(over="ignore"):
        want = _log_domain(x.reshape(-1, n_channels), beta, gamma, inverse).astype(dtype)
    want = want.reshape(x.shape)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    # float64 in the log domain: exp(log y) carries about |log y| ulps (|log y| <= 710)
    rtol = 20 * np.finfo(np.float32).eps if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=0)
    if not inverse:
        assert finite.all()


def test_huge_igdn_float32_finite_when_representable():
    x = np.array([[3e19, 1.0]], np.float32)          # x^2 overflows float32, y does not
    y = cgdn.apply_gdn(x, [1.0, 1.0], 0.1 * np.eye(2), inverse=True)
    assert np.all(np.isfinite(y))
    assert_close(y, _stable_classic(x, 1.0, 0.1, inverse=True), np.float32)
    z = cgdn.apply_gdn(np.array([[1e30, 1.0]], np.float32), [1.0, 1.0], 0.1 * np.eye(2),
                       inverse=True)
    assert np.isinf(z[0, 0]) and z[0, 1] == np.float32(np.sqrt(1.1))  # beyond float32: inf


def test_huge_float64():
    x = np.array([[1e200, -1e250, 2.0]])
    y = cgdn.apply_gdn(x, np.ones(3), 0.1 * np.eye(3))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, _stable_classic(x, 1.0, 0.1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_values_with_zero_beta(dtype):
    tiny = 1e-30 if dtype == np.float32 else 1e-200
    x = np.array([[tiny, -2 * tiny, 0.0]], dtype)
    y = cgdn.apply_gdn(x, np.zeros(3), 0.1 * np.eye(3) + 0.01)
    assert np.all(np.isfinite(y))
    ref = reference_gdn(x.astype(np.float64) / tiny, np.zeros(3), 0.1 * np.eye(3) + 0.01)
    assert_close(y, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_inputs(dtype):
    sub = np.finfo(dtype).smallest_subnormal * 7
    x = np.array([[sub, -sub, 1.0], [sub, 0.0, 0.0]], dtype)
    y = cgdn.apply_gdn(x, np.ones(3), 0.1 * np.eye(3))
    assert np.all(np.isfinite(y))
    assert y[0, 0] == sub and y[1, 1] == 0
    y0 = cgdn.apply_gdn(x, np.zeros(3), np.eye(3))  # beta = 0: pool subnormal or zero
    assert np.all(np.isfinite(y0[0]))
    np.testing.assert_allclose(y0[0], np.sign(x[0]), rtol=1e-6)
    assert np.isnan(y0[1, 1])  # 0 / sqrt(0): no finite answer exists


def test_general_exponents_overflow_rescued():
    x = np.array([[1e15, 2.0, 3.0]], np.float32)   # |x|**3 overflows float32
    y = cgdn.apply_gdn(x, np.ones(3), 0.1 * np.eye(3), alpha=3.0, epsilon=1 / 3)
    assert np.all(np.isfinite(y))
    expected = x.astype(np.float64) / (1 + 0.1 * np.abs(x.astype(np.float64)) ** 3) ** (1 / 3)
    assert_close(y, expected, np.float32)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_rescue_leaves_neighbours_bit_identical_and_works_in_place(rng, data_format):
    x = rng.standard_normal((2, 40, 30, 12)).astype(np.float32)
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    beta, gamma = rng.uniform(0.5, 1, 12), rng.uniform(0, 0.1, (12, 12))
    clean = cgdn.apply_gdn(x, beta, gamma, data_format=data_format)
    hot = x.copy()
    if data_format == "channels_last":
        hot[1, 7, 3, 5] = 1e25
        mask = np.zeros(x.shape[:3], bool)
        mask[1, 7, 3] = True
    else:
        hot[1, 5, 7, 3] = 1e25
        mask = np.zeros((2, 40, 30), bool)
        mask[1, 7, 3] = True
        mask = np.broadcast_to(mask[:, None], x.shape)
    expected_hot = reference_gdn(hot, beta, gamma, data_format=data_format)
    for out in (None, "inplace"):
        buf = hot.copy()
        y = cgdn.apply_gdn(buf, beta, gamma, data_format=data_format,
                           out=buf if out else None, num_threads=2)
        if data_format == "channels_last":
            np.testing.assert_array_equal(y[~mask], clean[~mask])
            assert_close(y[mask], expected_hot[mask], np.float32)
        else:
            np.testing.assert_array_equal(y[~mask], clean[~mask])
            assert_close(y[mask], expected_hot[mask], np.float32)
        assert np.all(np.isfinite(y))


def test_nan_inf_confined_channels_first(rng):
    x = rng.standard_normal((2, 20, 9, 9))
    beta, gamma = np.ones(20), np.full((20, 20), 0.02)
    clean = cgdn.apply_gdn(x, beta, gamma, data_format="channels_first")
    x[0, 4, 2, 2] = np.nan
    x[1, 0, 8, 8] = -np.inf
    y = cgdn.apply_gdn(x, beta, gamma, data_format="channels_first")
    mask = np.zeros((2, 9, 9), bool)
    mask[0, 2, 2] = mask[1, 8, 8] = True
    mask = np.broadcast_to(mask[:, None], x.shape)
    np.testing.assert_array_equal(y[~mask], clean[~mask])
    assert np.isnan(y[0, 4, 2, 2])


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_subclass_is_handled():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    y = cgdn.apply_gdn(m, [1.0, 1.0], 0.1 * np.eye(2))
    assert type(y) is np.ndarray
    assert_close(y, reference_gdn(np.asarray(m), [1.0, 1.0], 0.1 * np.eye(2)), np.float64)


@pytest.mark.parametrize("inputs,exc,match", [
    (np.array([[1.0, "a"]], dtype=object), TypeError, "dtype float16, float32 or float64"),
    (np.ones((2, 2), complex), TypeError, "got complex128"),
    (np.ones((2, 2), bool), TypeError, "got bool"),
    (np.ones((2, 2), np.int16), TypeError, "astype"),
    (np.float64(2.0), ValueError, "at least 2 dimensions"),
    (np.array(2.0), ValueError, "at least 2 dimensions"),
    (5, TypeError, "got int64"),
    ([[1.0, 2.0], [3.0]], ValueError, "rectangular"),
    (np.ma.masked_array(np.ones((2, 2)), mask=[[0, 1], [0, 0]]), TypeError, "masked"),
    ("text", TypeError, "dtype"),
    (None, TypeError, "dtype"),
])
def test_odd_inputs_refused_clearly(inputs, exc, match):
    with pytest.raises(exc, match=match):
        cgdn.apply_gdn(inputs, [1.0, 1.0], np.eye(2))


def test_lists_and_tuples_accepted():
    y = cgdn.apply_gdn(((1.0, 2.0), (3.0, 4.0)), [1, 1], [[0.1, 0], [0, 0.1]])
    assert_close(y, reference_gdn([[1.0, 2.0], [3.0, 4.0]], [1, 1], 0.1 * np.eye(2)),
                 np.float64)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("alpha,inverse", [(1.0, False), (2.0, False), (1.0, True)])
def test_pools_above_2_to_the_125_keep_the_answer(data_format, alpha, inverse):
    # epsilon = 1: 1/n of a pool in (2^126, FLT_MAX] is subnormal, and the reciprocal
    # estimates flush it to zero (x / n came out 0 instead of ~1 for x = 2e38, alpha = 1)
    value = 2e38 if alpha == 1.0 else 1.5e19
    x = np.full((1, 40, 40, 8), 0.5, np.float32)
    x[0, 3:9, 5, 2] = value
    xl = x if data_format == "channels_last" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = cgdn.apply_gdn(xl, np.ones(8), np.eye(8), alpha=alpha, epsilon=1.0, inverse=inverse,
                       data_format=data_format)
    y = y if data_format == "channels_last" else y.transpose(0, 2, 3, 1)
    x64 = x.astype(np.float64)
    n = 1 + np.abs(x64) ** alpha
    with np.errstate(over="ignore"):     # IGDN of 1.5e19: beyond float32, inf
        want = (x64 * n if inverse else x64 / n).astype(np.float32)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inverse", [False, True])
def test_general_epsilon_root_beyond_the_range(dtype, inverse):
    # epsilon = 2 of a pool at the smallest normal (n^2 underflows: 0 / 0 was NaN) or near
    # the top (n^2 overflows): the careful path gives the finite answer
    tiny, big = float(np.finfo(dtype).tiny), float(np.sqrt(np.finfo(dtype).max)) * 4
    x = np.array([[0.0, 1.0], [tiny ** 0.5, 1.0], [big, 1.0]], dtype)
    beta = np.array([tiny, 1.0])
    y = cgdn.apply_gdn(x, beta, np.diag([1.0, 0.0]), alpha=1.0, epsilon=2.0, inverse=inverse)
    with np.errstate(over="ignore"):
        want = np.array([_log_domain_row(r, beta, np.diag([1.0, 0.0]), 1.0, 2.0, inverse)
                         for r in x.astype(np.float64)]).astype(dtype)
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
    assert not np.isnan(y).any()
    finite = np.isfinite(want)
    np.testing.assert_allclose(y[finite], want[finite], rtol=1e-5 if dtype == np.float32
                               else 1e-11, atol=0)


def _log_domain_row(x, beta, gamma, alpha, epsilon, inverse):
    with np.errstate(divide="ignore"):
        log_abs = np.log(np.abs(x))
        terms = np.vstack([np.log(gamma) + alpha * log_abs[:, None], np.log(beta)[None]])
    top = terms.max(axis=0)
    log_pool = top + np.log(np.exp(terms - top).sum(axis=0))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.copysign(np.exp(log_abs + (1 if inverse else -1) * epsilon * log_pool), x)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_gamma_does_not_lose_underflowed_inputs(data_format, dtype):
    # |x1| ** alpha underflows to a subnormal or zero, but gamma = 1e10 (against beta at
    # the smallest normal) would bring it back above beta: the pool lost most of itself
    tiny = float(np.finfo(dtype).tiny)
    sub = float(np.finfo(dtype).smallest_subnormal) * 7
    x = np.full((1, 30, 30, 2), 1e-3, dtype)
    x[0, 4, 5] = [6.4e-4, sub]
    beta, gamma = np.array([tiny, tiny]), np.array([[tiny, 0.0], [1e10, 0.0]])
    xl = x if data_format == "channels_last" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = cgdn.apply_gdn(xl, beta, gamma, alpha=1.125, epsilon=1.0, data_format=data_format)
    y = y if data_format == "channels_last" else y.transpose(0, 2, 3, 1)
    want = _log_domain_row(x[0, 4, 5].astype(np.float64), beta, gamma, 1.125, 1.0, False)
    np.testing.assert_allclose(y[0, 4, 5], want.astype(dtype),
                               rtol=1e-5 if dtype == np.float32 else 1e-11)
