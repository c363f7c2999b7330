"""The private kernels called directly: every ISA variant, fused specializations, guards."""
import os
import platform

import numpy as np
import pytest

from cgdn import _isa, _testing
from conftest import VARIANTS, assert_close, reference_gdn


def test_variants_report_their_isa():
    for isa in VARIANTS:
        assert _isa.load(isa).ISA == isa
    assert VARIANTS[-1] == ("neon" if platform.machine().lower() in ("aarch64", "arm64")
                            else "baseline")
    forced = os.environ.get("CGDN_ISA")
    assert _isa.kernels.ISA == (forced if forced in VARIANTS else _isa.best())  # best default
    assert _isa.best() == next(isa for isa in VARIANTS if isa != "wide")


def _scratch(k, threads, tile, c, dtype, channels_last=True):
    return np.empty((threads, _testing.scratch_size(k, c, tile, channels_last)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_channels", [1, 3, 5, 8, 13, 16, 17, 40])
@pytest.mark.parametrize("mode", [(2.0, 0.5, False), (2.0, 0.5, True), (1.0, 1.0, False),
                                  (1.0, 1.0, True), (1.5, 0.7, False)])
def test_channels_last_every_variant(rng, every_isa, dtype, n_channels, mode):
    k = every_isa
    alpha, epsilon, inverse = mode
    x = rng.standard_normal((301, n_channels)).astype(dtype)
    beta = rng.uniform(0.5, 1.5, n_channels).astype(dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 64
    flags = np.zeros(5, np.uint8)
    n = _testing.gdn_channels_last(k, x, beta, gamma, out, _scratch(k, 2, tile, n_channels, dtype),
                                   flags, tile, alpha, epsilon, inverse, False, 2)
    assert n == 0 and not flags.any()
    assert_close(out, reference_gdn(x, beta, gamma, alpha=alpha, epsilon=epsilon,
                                    inverse=inverse), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_channels", [2, 16, 17, 33])
@pytest.mark.parametrize("rectify", [False, True])
@pytest.mark.parametrize("head", [0, 5])
def test_channels_first_every_variant(rng, every_isa, dtype, n_channels, rectify, head):
    # head: a short first block in each image (as apply_gdn makes to align the others)
    k = every_isa
    x = rng.standard_normal((3, n_channels, 77)).astype(dtype)
    beta = np.full(n_channels, 0.5, dtype)
    gamma = rng.uniform(0, 0.3, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    tile = 16
    n_tiles = 3 * _testing.channels_first_blocks(77, tile, head)
    assert n_tiles == 3 * (5 if head == 0 else 6)
    _testing.gdn_channels_first(k, x, beta, gamma, out,
                                _scratch(k, 1, tile, n_channels, dtype, False),
                                np.zeros(n_tiles, np.uint8), tile, head, 1.0, 1.0, True,
                                rectify, 1)
    assert_close(out, reference_gdn(x, beta, gamma, inverse=True, alpha=1, epsilon=1,
                                    rectify=rectify, data_format="channels_first"), dtype)


def test_variants_agree_closely(rng, every_isa):
    x = rng.standard_normal((2, 50, 50, 12)).astype(np.float32)
    beta, gamma = np.ones(12, np.float32), rng.uniform(0, 0.1, (12, 12)).astype(np.float32)
    results = []
    for k in (every_isa, _isa.load(VARIANTS[-1])):
        out = np.empty((5000, 12), np.float32)
        _testing.gdn_channels_last(k, x.reshape(-1, 12), beta, gamma, out,
                                   _scratch(k, 1, 500, 12, np.float32), np.zeros(10, np.uint8),
                                   500, 2.0, 0.5, False, False, 1)
        results.append(out)
    np.testing.assert_allclose(results[0], results[1], rtol=2e-6)


def test_kernel_guards_refuse_small_scratch():
    k = _isa.kernels
    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="scratch"):
        _testing.gdn_channels_last(k, x, np.ones(4), np.eye(4), np.empty_like(x),
                                   np.empty((1, _testing.scratch_size(k, 4, 4, True) - 1)),
                                   np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="scratch"):
        _testing.gdn_channels_last(k, x, np.ones(4), np.eye(4), np.empty_like(x),
                                   _scratch(k, 1, 4, 4, np.float64), np.zeros(3, np.uint8), 4, 2.0,
                                   0.5, False, False, 2)


def test_kernel_guards_refuse_mismatched_shapes():
    k = _isa.kernels
    x = np.ones((10, 4))
    scratch = _scratch(k, 1, 4, 4, np.float64)
    with pytest.raises(ValueError, match="beta and gamma"):
        _testing.gdn_channels_last(k, x, np.ones(3), np.eye(4), np.empty_like(x), scratch,
                                   np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="out"):
        _testing.gdn_channels_last(k, x, np.ones(4), np.eye(4), np.empty((9, 4)), scratch,
                                   np.zeros(3, np.uint8), 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="flags"):
        _testing.gdn_channels_last(k, x, np.ones(4), np.eye(4), np.empty_like(x), scratch,
                                   np.zeros(2, np.uint8), 4, 2.0, 0.5, False, False, 1)
    x3 = np.ones((1, 4, 10))
    with pytest.raises(ValueError, match="head"):
        _testing.gdn_channels_first(k, x3, np.ones(4), np.eye(4), np.empty_like(x3),
                                    _scratch(k, 1, 4, 4, np.float64, False), np.zeros(4, np.uint8),
                                    4, 4, 2.0, 0.5, False, False, 1)
    with pytest.raises(ValueError, match="head"):
        _testing.channels_first_blocks(10, 4, -1)


@pytest.mark.parametrize("n_channels", [1, 3, 5, 24])
def test_scratch_garbage_does_not_leak_into_results(rng, every_isa, n_channels):
    # The mixers store whole vectors past each pixel and read f past a tile's end: NaN
    # left in scratch by an earlier tile must not reach later tiles, on every variant.
    k = every_isa
    x = rng.standard_normal((256, n_channels))
    x[:64] = np.nan
    gamma = np.full((n_channels, n_channels), 0.02)
    out = np.empty_like(x)
    scratch = np.full((1, _testing.scratch_size(k, n_channels, 64, True)), np.nan)
    _testing.gdn_channels_last(k, x, np.ones(n_channels), gamma, out, scratch,
                               np.zeros(4, np.uint8), 64, 2.0, 0.5, False, False, 1)
    assert np.isnan(out[:64]).all()
    assert_close(out[64:], reference_gdn(x[64:], np.ones(n_channels), gamma), np.float64)


# Channel counts around every switch of the mixers: the shared-lanes path (2 C <= lanes),
# one GEMM panel (C <= panel vectors x lanes), several panels with a narrower last one,
# and vector tails, for the lane widths 2, 4, 8 and 16 of the variants.
MIXER_CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40, 48,
                  49, 63, 64, 65, 80, 97, 130, 192]


@pytest.mark.parametrize("n_channels", MIXER_CHANNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_mixer_every_path(rng, every_isa, n_channels, dtype):
    # Pixel counts not a multiple of any register block (97 pixels, tiles of 40).
    k = every_isa
    x = rng.standard_normal((97, n_channels)).astype(dtype)
    beta = rng.uniform(0.5, 1.5, n_channels).astype(dtype)
    gamma = rng.uniform(0, 0.2, (n_channels, n_channels)).astype(dtype)
    out = np.empty_like(x)
    _testing.gdn_channels_last(k, x, beta, gamma, out, _scratch(k, 2, 40, n_channels, dtype),
                               np.zeros(3, np.uint8), 40, 2.0, 0.5, False, False, 2)
    assert_close(out, reference_gdn(x, beta, gamma), dtype)


@pytest.mark.parametrize("n_channels", [5, 17, 48, 65, 192])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_gamma_starts_on_a_cache_line(rng, every_isa, n_channels, dtype):
    # The GEMM loads every vector of the packed panels once per block of pixels: a panel
    # 16-48 bytes past a line (where NumPy and malloc place blocks) makes every AVX-512
    # load straddle two lines. Packing is the same, wherever it lands; channels_first
    # reads gamma transposed.
    gamma = rng.uniform(0, 0.2, (n_channels, n_channels)).astype(dtype)
    k = every_isa
    mixers = [_testing.mixer(k, gamma, True) for _ in range(8)]
    assert [offset for offset, _ in mixers] == [0] * 8
    assert all(np.array_equal(values, mixers[0][1]) for _, values in mixers)
    assert np.isin(gamma, mixers[0][1]).all()
    offset, values = _testing.mixer(k, gamma, False)
    assert offset == 0
    assert np.array_equal(values.reshape(n_channels, n_channels), gamma.T)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("n_channels", [3, 12, 40, 130])
def test_results_do_not_depend_on_where_scratch_starts(rng, every_isa, channels_last, n_channels):
    # The kernels move each thread's scratch onto a cache line: a scratch array starting
    # 4..60 bytes past one (rows of odd lengths) gives the same bits.
    shape = (150, n_channels) if channels_last else (2, n_channels, 75)
    x = rng.standard_normal(shape).astype(np.float32)
    beta = rng.uniform(0.5, 1.5, n_channels).astype(np.float32)
    gamma = rng.uniform(0, 0.1, (n_channels, n_channels)).astype(np.float32)
    tile = 40
    k = every_isa
    size = _testing.scratch_size(k, n_channels, tile, channels_last)
    results = []
    for skip in range(0, 16, 3):
        scratch = np.full(2 * (size + 1) + skip, np.nan, np.float32)[skip:]
        scratch = scratch[: 2 * (size + 1)].reshape(2, size + 1)
        out = np.empty_like(x)
        if channels_last:
            _testing.gdn_channels_last(k, x, beta, gamma, out, scratch, np.zeros(4, np.uint8), tile,
                                       2.0, 0.5, False, False, 2)
        else:
            _testing.gdn_channels_first(k, x, beta, gamma, out, scratch, np.zeros(4, np.uint8),
                                        tile, 0, 2.0, 0.5, False, False, 2)
        results.append(out)
    assert all(np.array_equal(r, results[0]) for r in results)
    assert_close(results[0], reference_gdn(x, beta, gamma, data_format="channels_last"
                                           if channels_last else "channels_first"),
                 np.float32)


@pytest.mark.parametrize("n_channels", MIXER_CHANNELS)
@pytest.mark.parametrize("n_positions", [1, 5, 37, 100])
def test_channels_first_mixer_every_path(rng, every_isa, n_channels, n_positions):
    # Positions not a multiple of the vector width; tiles of 48 and a shorter last tile.
    k = every_isa
    x = rng.standard_normal((2, n_channels, n_positions)).astype(np.float32)
    beta = rng.uniform(0.5, 1.5, n_channels).astype(np.float32)
    gamma = rng.uniform(0, 0.05, (n_channels, n_channels)).astype(np.float32)
    out = np.empty_like(x)
    tile = 48
    n_tiles = 2 * -(-n_positions // tile)
    _testing.gdn_channels_first(k, x, beta, gamma, out,
                                _scratch(k, 2, tile, n_channels, np.float32, False),
                                np.zeros(n_tiles, np.uint8), tile, 0, 2.0, 0.5, True, False, 2)
    assert_close(out, reference_gdn(x, beta, gamma, inverse=True,
                                    data_format="channels_first"), np.float32)


def test_variants_report_their_register_blocking(every_isa):
    # The blocking follows the register file: 4-vector panels with 32 registers, 3 with 16.
    k = every_isa
    assert k.MAX_PANEL_VECTORS == (4 if k.VECTOR_REGISTERS >= 32 else 3)
    assert k.LANES["float32"] == 2 * k.LANES["float64"]


# (alpha, epsilon, inverse, rectify): every mode of the one-pass kernels
_ONE_PASS_MODES = [(2.0, 0.5, False, False), (2.0, 0.5, True, True), (1.0, 1.0, False, True),
                   (1.0, 1.0, True, False), (2.0, 1.0, False, False), (1.0, 0.5, True, True)]


def _three_passes(k, x3, beta, gamma, channels_last, n_tiles, tile, mode, head=0):
    """Every tile through the careful path's three passes (f(x), mix, normalization)."""
    out = np.full_like(x3, np.nan)
    for t in range(n_tiles):
        bad = _testing.three_pass_tile(k, x3, beta, gamma, out, channels_last, t, tile, head,
                                       *mode)
        assert not bad.any()
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_channels,tile,max_rows", [
    *((c, 37, 200) for c in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 20, 24, 31,
                             32, 40, 48, 49, 64, 65, 130, 200)),
    # tiles of whole groups of 8 pixels (AVX2 transposes 3 and 9-12 channels in such
    # groups; a tile's last group is done without spilling past it)
    (3, 40, 200), (9, 40, 200), (10, 48, 200), (11, 24, 200), (12, 32, 200),
    # beyond one GEMM panel a tile is done in chunks of about 128 KiB: several per tile
    (300, 250, 600), (130, 600, 1300),
    # with one vector per pixel, AVX2 takes f(x) ahead in chunks of 1024 elements:
    # several per tile (float32 C = 6, 8; float64 C = 3, 4), chunks ending mid-block
    (6, 400, 900), (8, 300, 700), (3, 700, 1500), (4, 600, 1300)])
def test_one_pass_tiles_equal_three_pass_tiles_bit_for_bit(rng, every_isa, dtype,
                                                           n_channels, tile, max_rows):
    # The fast pass runs tiles in one pass where it can (f(x), mix, check, normalization
    # in registers; beyond one GEMM panel, per chunk of pixels); the careful path runs the same
    # tile through the three passes. Every mode of the one-pass kernels, tails of every
    # length, in place and not: same bits.
    k = every_isa
    for alpha, epsilon, inverse, rectify in _ONE_PASS_MODES:
        n = int(rng.integers(1, max_rows))
        x = (rng.standard_normal((n, n_channels)) * 3).astype(dtype)
        x[0, 0] = -0.0
        beta = rng.uniform(0.1, 1.5, n_channels).astype(dtype)
        gamma = rng.uniform(0, 0.5, (n_channels, n_channels)).astype(dtype)
        n_tiles = -(-n // tile)
        one_pass = np.empty_like(x)
        in_place = x.copy()
        for dest in (one_pass, in_place):
            src = x if dest is one_pass else in_place
            flags = np.zeros(n_tiles, np.uint8)
            assert _testing.gdn_channels_last(k, src, beta, gamma, dest,
                                              _scratch(k, 1, tile, n_channels, dtype), flags,
                                              tile, alpha, epsilon, inverse, rectify, 1) == 0
        three_pass = _three_passes(k, x[None], beta, gamma, True, n_tiles, tile,
                                   (alpha, epsilon, inverse, rectify))[0]
        np.testing.assert_array_equal(one_pass, three_pass)
        np.testing.assert_array_equal(in_place, three_pass)


@pytest.mark.parametrize("n_channels", [3, 9, 12, 16, 24, 40, 65, 130])
def test_one_pass_tiles_fall_back_on_out_of_range_pools(rng, every_isa, n_channels):
    # a pixel whose pool overflows sends its tile through the checking passes; in place,
    # the inputs of that tile must be intact for them
    k = every_isa
    x = rng.standard_normal((100, n_channels)).astype(np.float32)
    x[50, 0] = 1e30
    beta = np.ones(n_channels, np.float32)
    gamma = np.full((n_channels, n_channels), 0.1, np.float32)
    for src, dest in ((x.copy(), None), (x.copy(), "in place")):
        out = src if dest else np.empty_like(src)
        flags = np.zeros(4, np.uint8)
        assert _testing.gdn_channels_last(k, src, beta, gamma, out,
                                          _scratch(k, 1, 32, n_channels, np.float32), flags,
                                          32, 2.0, 0.5, False, False, 1) == 1
        assert flags.tolist() == [0, 1, 0, 0]
        np.testing.assert_array_equal(src[32:64], x[32:64])   # the flagged tile: untouched
        assert_close(np.delete(out, np.s_[32:64], axis=0),
                     reference_gdn(np.delete(x, np.s_[32:64], axis=0), beta, gamma),
                     np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_channels", [1, 2, 3, 4, 5, 8, 9, 12, 16, 17, 24, 33, 64, 65, 130])
def test_channels_first_one_pass_equals_three_passes(rng, every_isa, dtype, n_channels):
    # as the channels_last test above, for the channels_first one-pass tiles and, from 17
    # channels, the two-pass tiles (the mix normalizing its blocks; any alpha)
    k = every_isa
    tile = 40
    for alpha, epsilon, inverse, rectify in _ONE_PASS_MODES + [(1.5, 0.5, False, True)]:
        n_pos = int(rng.integers(1, 150))
        x = (rng.standard_normal((2, n_channels, n_pos)) * 3).astype(dtype)
        x[0, 0, 0] = -0.0
        beta = rng.uniform(0.1, 1.5, n_channels).astype(dtype)
        gamma = rng.uniform(0, 0.5, (n_channels, n_channels)).astype(dtype)
        head = int(rng.integers(0, tile))   # a short first block in each image, or none
        n_tiles = 2 * _testing.channels_first_blocks(n_pos, tile, head)
        one_pass, in_place = np.empty_like(x), x.copy()
        for dest in (one_pass, in_place):
            src = x if dest is one_pass else in_place
            assert _testing.gdn_channels_first(
                k, src, beta, gamma, dest, _scratch(k, 1, tile, n_channels, dtype, False),
                np.zeros(n_tiles, np.uint8), tile, head, alpha, epsilon, inverse, rectify,
                1) == 0
        three_pass = _three_passes(k, x, beta, gamma, False, n_tiles, tile,
                                   (alpha, epsilon, inverse, rectify), head)
        np.testing.assert_array_equal(one_pass, three_pass)
        np.testing.assert_array_equal(in_place, three_pass)


@pytest.mark.parametrize("n_channels", [3, 24])
@pytest.mark.parametrize("head,flagged", [(0, (32, 64)), (7, (39, 71))])
def test_channels_first_one_pass_falls_back_on_out_of_range_pools(rng, every_isa, n_channels,
                                                                  head, flagged):
    k = every_isa
    lo, hi = flagged
    x = rng.standard_normal((1, n_channels, 100)).astype(np.float32)
    x[0, 0, 50] = 1e30
    beta = np.ones(n_channels, np.float32)
    gamma = np.full((n_channels, n_channels), 0.1, np.float32)
    for in_place in (False, True):
        src = x.copy()
        out = src if in_place else np.empty_like(src)
        flags = np.zeros(4, np.uint8)
        assert _testing.gdn_channels_first(k, src, beta, gamma, out,
                                           _scratch(k, 1, 32, n_channels, np.float32, False),
                                           flags, 32, head, 2.0, 0.5, False, False, 1) == 1
        # blocks [0, 32), [32, 64), ... or [0, 7), [7, 39), [39, 71), ...: 50 in the 2nd/3rd
        assert flags.tolist() == ([0, 1, 0, 0] if head == 0 else [0, 0, 1, 0])
        np.testing.assert_array_equal(src[..., lo:hi], x[..., lo:hi])   # flagged: untouched
        keep = np.r_[0:lo, hi:100]
        assert_close(out[0][:, keep].T, reference_gdn(x[0][:, keep].T, beta, gamma), np.float32)
