"""The private kernels called directly: every ISA variant, fused specializations, guards."""
import os

import numpy as np
import pytest

from cgdn import _isa
from conftest import assert_close, reference_gdn

VARIANTS = _isa.available()
KERNELS = {isa: _isa.load(isa) for isa in VARIANTS}


def test_variants_report_their_isa():
    for isa, module in KERNELS.items():
        assert module.ISA == isa
    assert VARIANTS[-1] == "baseline"
    forced = os.environ.get("CGDN_ISA")
    assert _isa.kernels.ISA == (forced if forced in VARIANTS else VARIANTS[0])  # best default


def _scratch(k, threads, tile, c, dtype):
    return np.empty((threads, 2 * tile * c + k.SCRATCH_PAD), dtype)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("dtype,spec", [(np.float32, "float"), (np.float64, "double")])
@pytest.mark.parametrize("n_channels", [1, 3, 5, 8, 13, 16, 17, 40])
@pytest.mark.parametrize("mode", [(2.0, 0.5, False), (2.0, 0.5, True), (1.0, 1.0, False),
                                  (1.0, 1.0, True), (1.5, 0.7, False)])
def test_channels_last_every_variant(rng, isa, dtype, spec, n_channels, mode):
    k = KERNELS[isa]
    alpha, epsilon, inverse = mode
    x = rng.standard_normal((301, n_channels)).astype(dtype)
    beta = rng.uniform(0.5, 1.5, n_channels).astype(dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 64
    flags = np.zeros(5, np.uint8)
    n = k.gdn_channels_last[spec](x, beta, gamma, out, _scratch(k, 2, tile, n_channels, dtype),
                                  flags, tile, alpha, epsilon, inverse, False, 2)
    assert n == 0 and not flags.any()
    assert_close(out, reference_gdn(x, beta, gamma, alpha=alpha, epsilon=epsilon,
                                    inverse=inverse), dtype)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("dtype,spec", [(np.float32, "float"), (np.float64, "double")])
@pytest.mark.parametrize("n_channels", [2, 16, 17, 33])
@pytest.mark.parametrize("rectify", [False, True])
def test_channels_first_every_variant(rng, isa, dtype, spec, n_channels, rectify):
    k = KERNELS[isa]
    x = rng.standard_normal((3, n_channels, 77)).astype(dtype)
    beta = np.full(n_channels, 0.5, dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 16
    k.gdn_channels_first[spec](x, beta, gamma, out, _scratch(k, 1, tile, n_channels, dtype),
                               np.zeros(15, np.uint8), tile, 1.0, 1.0, True, rectify, 1)
    assert_close(out, reference_gdn(x, beta, gamma, inverse=True, alpha=1, epsilon=1,
                                    rectify=rectify, data_format="channels_first"), dtype)


@pytest.mark.parametrize("isa", VARIANTS)
def test_variants_agree_closely(rng, isa):
    x = rng.standard_normal((2, 50, 50, 12)).astype(np.float32)
    beta, gamma = np.ones(12, np.float32), rng.uniform(0, 0.1, (12, 12)).astype(np.float32)
    results = {}
    for name, k in KERNELS.items():
        out = np.empty((5000, 12), np.float32)
        k.gdn_channels_last(x.reshape(-1, 12), beta, gamma, out,
                            _scratch(k, 1, 500, 12, np.float32), np.zeros(10, np.uint8),
                            500, 2.0, 0.5, False, False, 1)
        results[name] = out
    np.testing.assert_allclose(results[isa], results["baseline"], rtol=2e-6)


def test_kernel_guards_refuse_small_scratch():
    k = _isa.kernels
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="scratch"):
        k.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty_like(x), np.empty((1, 8)),
                            np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="scratch"):
        k.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty_like(x),
                            _scratch(k, 1, 4, 4, np.float64), np.zeros(3, np.uint8), 4, 2.0,
                            0.5, False, False, 2)


def test_kernel_guards_refuse_mismatched_shapes():
    k = _isa.kernels
    x = np.ones((10, 4))
    scratch = _scratch(k, 1, 4, 4, np.float64)
    with pytest.raises(ValueError, match="beta and gamma"):
        k.gdn_channels_last(x, np.ones(3), np.eye(4), np.empty_like(x), scratch,
                            np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="out"):
        k.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty((9, 4)), scratch,
                            np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="flags"):
        k.gdn_channels_last(x, np.ones(4), np.eye(4), np.empty_like(x), scratch,
                            np.zeros(2, np.uint8), 4, 2.0, 0.5, False, False, 1)


@pytest.mark.parametrize("n_channels", [5, 24])
def test_scratch_garbage_does_not_leak_into_results(rng, n_channels):
    # BLAS writes into uninitialised scratch (beta = 0) and the micro-kernel spills past
    # each pixel: NaN left in scratch by an earlier tile must not reach later tiles.
    k = _isa.kernels
    x = rng.standard_normal((256, n_channels))
    x[:64] = np.nan
    gamma = np.full((n_channels, n_channels), 0.02)
    out = np.empty_like(x)
    scratch = np.full((1, 2 * 64 * n_channels + k.SCRATCH_PAD), np.nan)
    k.gdn_channels_last(x, np.ones(n_channels), gamma, out, scratch, np.zeros(4, np.uint8),
                        64, 2.0, 0.5, False, False, 1)
    assert np.isnan(out[:64]).all()
    assert_close(out[64:], reference_gdn(x[64:], np.ones(n_channels), gamma), np.float64)


@pytest.mark.parametrize("n_channels", [17, 24, 33, 48, 64, 80, 96, 130, 192])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_own_gemm_against_blas_path(rng, n_channels, dtype):
    # Panel widths 2, 3, 4 vectors, masked last panels, pixel counts not a multiple of the
    # register block: the own GEMM (AVX-512) and BLAS (other variants) agree with NumPy.
    for isa, k in KERNELS.items():
        x = rng.standard_normal((97, n_channels)).astype(dtype)
        beta = rng.uniform(0.5, 1.5, n_channels).astype(dtype)
        gamma = rng.uniform(0, 0.2, (n_channels, n_channels)).astype(dtype)
        out = np.empty_like(x)
        k.gdn_channels_last(x, beta, gamma, out, _scratch(k, 2, 40, n_channels, dtype),
                            np.zeros(3, np.uint8), 40, 2.0, 0.5, False, False, 2)
        assert_close(out, reference_gdn(x, beta, gamma), dtype)
        expect_blas = not (isa == "avx512" and n_channels <= k.OWN_GEMM_MAX_CHANNELS)
        assert k.uses_blas(n_channels, "channels_last") == expect_blas


@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
@pytest.mark.parametrize("n_channels", [17, 40, 130, 400])
def test_every_mixer_of_every_variant(rng, layout, n_channels):
    # Between SMALL_CHANNELS and the own-mixer limits the kernels use their own SIMD mixers;
    # above them (400) BLAS per tile: every path of every variant agrees with NumPy.
    for isa, k in KERNELS.items():
        shape = (2, 23, n_channels) if layout == "channels_last" else (2, n_channels, 23)
        x = rng.standard_normal(shape).astype(np.float32)
        beta = rng.uniform(0.5, 1.5, n_channels).astype(np.float32)
        gamma = rng.uniform(0, 0.05, (n_channels, n_channels)).astype(np.float32)
        out = np.empty_like(x)
        tile = 8
        if layout == "channels_last":
            flat = x.reshape(-1, n_channels)
            k.gdn_channels_last(flat, beta, gamma, out.reshape(-1, n_channels),
                                _scratch(k, 2, tile, n_channels, np.float32),
                                np.zeros(6, np.uint8), tile, 2.0, 0.5, True, False, 2)
        else:
            k.gdn_channels_first(x, beta, gamma, out,
                                 _scratch(k, 2, tile, n_channels, np.float32),
                                 np.zeros(6, np.uint8), tile, 2.0, 0.5, True, False, 2)
        assert_close(out, reference_gdn(x, beta, gamma, inverse=True, data_format=layout),
                     np.float32)
        limit = (k.OWN_GEMM_MAX_CHANNELS if layout == "channels_last"
                 else k.SLAB_MIX_MAX_CHANNELS)
        assert k.uses_blas(n_channels, layout) == (n_channels > limit)
