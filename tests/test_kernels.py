"""The private kernels called directly: fused specializations and guards."""
import numpy as np
import pytest

from cgdn import _kernels
from conftest import assert_close, reference_gdn


@pytest.mark.parametrize("dtype,spec", [(np.float32, "float"), (np.float64, "double")])
@pytest.mark.parametrize("n_channels", [3, _kernels.SMALL_CHANNELS + 1, 40])
def test_channels_last_specializations(rng, dtype, spec, n_channels):
    x = rng.standard_normal((300, n_channels)).astype(dtype)
    beta = np.ones(n_channels, dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 64
    scratch = np.empty((2, 2 * tile * n_channels), dtype)
    _kernels.gdn_channels_last[spec](x, beta, gamma, out, scratch,
                                     np.zeros(5, np.uint8), tile, 2.0, 0.5, False, False, 2)
    assert_close(out, reference_gdn(x, beta, gamma), dtype)


@pytest.mark.parametrize("dtype,spec", [(np.float32, "float"), (np.float64, "double")])
@pytest.mark.parametrize("n_channels", [2, _kernels.SMALL_CHANNELS + 1, 33])
def test_channels_first_specializations(rng, dtype, spec, n_channels):
    x = rng.standard_normal((3, n_channels, 77)).astype(dtype)
    beta = np.full(n_channels, 0.5, dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 16
    scratch = np.empty((1, 2 * tile * n_channels), dtype)
    _kernels.gdn_channels_first[spec](x, beta, gamma, out, scratch,
                                      np.zeros(15, np.uint8), tile, 1.0, 1.0, True, False, 1)
    assert_close(out, reference_gdn(x, beta, gamma, inverse=True, alpha=1, epsilon=1,
                                    data_format="channels_first"), dtype)


def test_kernel_guards_refuse_small_scratch():
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="scratch"):
        _kernels.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty_like(x),
                                   np.empty((1, 8)), np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="scratch"):
        _kernels.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty_like(x),
                                   np.empty((1, 64)), np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 2)


def test_kernel_guards_refuse_mismatched_shapes():
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="beta and gamma"):
        _kernels.gdn_channels_last(x, np.ones(3), np.eye(4), np.empty_like(x),
                                   np.empty((1, 64)), np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="out"):
        _kernels.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty((9, 4)),
                                   np.empty((1, 64)), np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)


def test_scratch_garbage_does_not_leak_into_results(rng):
    # BLAS is called with beta = 0 into uninitialised scratch: NaN left there by an
    # earlier tile must not reach later tiles.
    x = rng.standard_normal((256, 24))
    x[:64] = np.nan
    gamma = np.full((24, 24), 0.02)
    out = np.empty_like(x)
    scratch = np.full((1, 2 * 64 * 24), np.nan)
    _kernels.gdn_channels_last(x, np.ones(24), gamma, out, scratch,
                               np.zeros(4, np.uint8), 64, 2.0, 0.5, False, False, 1)
    assert np.isnan(out[:64]).all()
    assert_close(out[64:], reference_gdn(x[64:], np.ones(24), gamma), np.float64)
