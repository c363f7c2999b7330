/* Kernel family: the whole GDN of a run of pixels in one pass, for few channels
 * (fused_rows_supported, fused_planes_supported). channels_last: where one vector holds
 * whole pixels (C = 1, or 2 C <= LANES with lane permutes), each vector of inputs is
 * loaded once and f(x), the mix, the range check and the normalization happen in
 * registers, one store; for more channels (one GEMM panel: up to 64 on AVX-512), per
 * block of pixels, or, where a pixel's vectors would hold much padding, per transposed
 * group of pixels (columns_fit: C = 3 and 9-12 on AVX2); beyond one panel
 * (fused_wide_supported), per chunk of pixels with f(x) in scratch. kernels.h includes
 * it once per dtype, after gemm.h and normalize.h.
 *
 * The arithmetic is the three-pass path's (f(x) into scratch, mix_rows, normalize), in
 * the same order, so results are bit-identical to it: a tile may take either path.
 * Returns whether every pool was a positive normal finite number; if not, `y` holds
 * garbage and the caller redoes the run with the three-pass path, which checks each
 * pixel. `y` must not be `x`: stores of whole vectors spill past a group's pixels into
 * the next group's place (rewritten right after; the end of the run uses tail stores),
 * which in place would overwrite inputs not yet read. */

CGDN_INLINE vec fused_input(vec v, int rectify) {
    return rectify ? v_rectify(v) : v;
}

CGDN_INLINE vec fused_pool_input(vec v, int pool_abs) {
    return pool_abs ? v_abs(v) : v_mul(v, v);
}

/* A whole vector, or the last `left` (< LANES) elements of the run. */
CGDN_INLINE vec fused_load(const real *x, ptrdiff_t left) {
    return left >= LANES ? v_load(x) : v_load_tail(x, left, (real)0);
}

CGDN_INLINE void fused_store(real *y, ptrdiff_t left, vec v) {
    if (left >= LANES)
        v_store(y, v);
    else
        v_store_tail(y, left, v);
}

/* f(x) of `count` elements into fb, whole vectors (fb holds count rounded up to LANES). */
CGDN_INLINE void fused_pool_run(const real *x, real *fb, ptrdiff_t count, int rectify,
                                int pool_abs) {
    ptrdiff_t e;
    for (e = 0; e < count; e += LANES)
        v_store(fb + e, fused_pool_input(fused_input(fused_load(x + e, count - e), rectify),
                                         pool_abs));
}

/* C = 1 */
CGDN_INLINE int fused_single(const real *x, real *y, const real *gamma, const real *beta,
                             ptrdiff_t n, int rectify, int pool_abs, const int mode) {
    const vec g = v_set1(gamma[0]), b0 = v_set1(beta[0]);
    vrange range = v_range_init();
    ptrdiff_t p;
    vec v, acc;
    for (p = 0; p < n; p += LANES) {
        v = fused_input(fused_load(x + p, n - p), rectify);
        acc = v_fma(fused_pool_input(v, pool_abs), g, b0);
        range = v_range_fold(range, acc);
        fused_store(y + p, n - p, normalize_one(v, acc, mode));
    }
    return v_range_ok(range);
}

#if HAS_PERMUTE
/* 2 C <= LANES: groups of m = LANES / C pixels per vector */
CGDN_INLINE int fused_shared(const real *x, real *y, const real *gamma, const real *beta,
                             ptrdiff_t n, int rectify, int pool_abs, const int mode,
                             const int C) {
    const ptrdiff_t used = (LANES / C) * C, total = n * C;
    vperm idx[LANES / 2 > 0 ? LANES / 2 : 1];
    vec g[LANES / 2 > 0 ? LANES / 2 : 1], b0, v, acc;
    vrange range = v_range_init();
    ptrdiff_t e;
    shared_setup(gamma, beta, C, idx, g, &b0);
    for (e = 0; e < total; e += used) {
        v = fused_input(fused_load(x + e, total - e), rectify);
        acc = shared_pool(fused_pool_input(v, pool_abs), idx, g, b0, C);
        range = v_range_fold(range, acc);
        fused_store(y + e, total - e, normalize_one(v, acc, mode));
    }
    return v_range_ok(range);
}
#endif

#if HAS_QUADS
/* C = 2 and 4 where the ISA has cheap splats within quads of 4 lanes (HAS_QUADS: AVX2
 * float32): whole pixels tile the vector (as in fused_shared), and f[p, j] reaches its
 * pixel's lanes by an in-quad splat instead of a lane permute: the same multiply-adds in
 * the same order (bit-identical to fused_shared and to the three passes). Side by side
 * with fused_shared in a C harness (AMD EPYC, 1 thread, (65536, C) in tiles of 1024 / C
 * pixels, float32): 22% and 26% faster at C = 2 and 4. The rows are tiled as for
 * fused_shared (rows_tiled). */

/* One vector of pixels (inputs v, rectified): returns the normalized vector. */
CGDN_INLINE vec quads_one(vec v, const vec *g, vec b0, int pool_abs, const int mode,
                          const int C, vrange *range) {
    const vec f = fused_pool_input(v, pool_abs);
    vec acc = b0;
    int j;
    for (j = 0; j < C; j++) acc = v_fma(v_quad_splat(f, C, j), g[j], acc);
    *range = v_range_fold(*range, acc);
    return normalize_one(v, acc, mode);
}

/* Whole vectors, the last one with a mask, as fused_shared. */
CGDN_INLINE int fused_quads(const real *x, real *y, const real *gamma, const real *beta,
                            ptrdiff_t n, int rectify, int pool_abs, const int mode,
                            const int C) {
    const ptrdiff_t total = n * C;
    vec g[4], b0;
    vrange range = v_range_init();
    ptrdiff_t e;
    rows_tiled(gamma, beta, C, g, &b0);
    for (e = 0; e < total; e += LANES)
        fused_store(y + e, total - e,
                    quads_one(fused_input(fused_load(x + e, total - e), rectify), g, b0,
                              pool_abs, mode, C, &range));
    return v_range_ok(range);
}
#endif

/* C > LANES / 2 (no lanes shared), in one GEMM panel of K = ceil(C / LANES) vectors:
 * blocks of R = CGDN_FUSED_ROWS(K) pixels. f(x) of the block's R C elements goes to a
 * buffer on the stack, read back by broadcasts; gemm_block sums the block's pools in
 * registers exactly as for mix_rows (from beta, j increasing), checks them, and
 * normalizes each pixel from its accumulators.
 *
 * Rows per block: as CGDN_ROWS(K), but leaving 4 registers for the normalization's
 * temporaries (AVX2: 10 rows for K = 1, 4 for K = 2; measured 2-10% faster than the
 * GEMM's 12 and 6 at C = 6-16; AVX-512 and NEON keep 12). */
#define CGDN_FUSED_ROWS_FIT(K) ((CGDN_NREG - 4 - (K) - 1) / (K))
#define CGDN_FUSED_ROWS(K) (CGDN_FUSED_ROWS_FIT(K) < CGDN_RMAX ? CGDN_FUSED_ROWS_FIT(K) : CGDN_RMAX)

/* f(x) ahead: with one vector per pixel (K = 1), 16 registers and 32-byte vectors (AVX2),
 * f(x) of a chunk of up to CGDN_FUSED_AHEAD elements goes to fb before its blocks run,
 * rather than each block's just before the block reads it back by broadcasts (those
 * loads then wait on 32-byte stores still in flight). Side by side in a C harness
 * calling this header (AMD EPYC, 1 thread, (65536, C) in tiles of 1024 / C pixels, the
 * normalization modes): float32 23-40% faster at C = 6 (all four), 21% at 7 (GDN),
 * 0-27% at 8 (all four); float64 C = 3, 4 within 2%; chunks of 256 to 2048 elements
 * within 5% of each other (128: 9% slower than 1024); bit-identical. Not taken where it
 * lost: float32 C = 16 (K = 2) 2-21% slower, more so with longer chunks; SSE2 float32
 * C = 3, 4 (16-byte vectors) 2-20% slower. */
#ifndef CGDN_FUSED_AHEAD
#define CGDN_FUSED_AHEAD 1024
#endif
#define CGDN_FUSED_FB (CGDN_FUSED_AHEAD > CGDN_RMAX * CGDN_KMAX * LANES ? \
                       CGDN_FUSED_AHEAD : CGDN_RMAX * CGDN_KMAX * LANES)

/* The block of R pixels that starts at pixel p of the chunk at x: f(x) from fb (ahead)
 * or, else, to fb first; then gemm_block normalizes from its registers. A pixel's last
 * vector spills into the next pixel's place (stored after it); in the run's last block
 * (at_end) every pixel's last vector is a tail store instead. */
CGDN_INLINE int fused_block(const real *x, real *y, real *fb, int ahead, ptrdiff_t p,
                            const real *packed, const vec *init, int at_end, int rectify,
                            int pool_abs, const int mode, const int C, const int K,
                            const int R) {
    real *f = ahead ? fb + p * C : fb;
    if (!ahead) fused_pool_run(x + p * C, f, R * C, rectify, pool_abs);
    return gemm_block(f, C, packed, K * LANES, y + p * C, C, C, init, NULL,
                      at_end ? C - (K - 1) * LANES : LANES, x + p * C, C, rectify, mode, R,
                      K);
}

/* n pixels at x (a chunk; at_end: the run ends with it): blocks of R pixels, then of 8,
 * 4, 2 and 1. */
CGDN_INLINE int fused_chunk(const real *x, real *y, real *fb, int ahead, const real *packed,
                            const vec *init, ptrdiff_t n, int at_end, int rectify,
                            int pool_abs, const int mode, const int C, const int K) {
    const int R = CGDN_FUSED_ROWS(K);
    ptrdiff_t p = 0;
    int ok = 1;
    if (ahead) fused_pool_run(x, fb, n * C, rectify, pool_abs);
    for (; p + R <= n; p += R)
        ok &= fused_block(x, y, fb, ahead, p, packed, init, at_end && p + R == n, rectify,
                          pool_abs, mode, C, K, R);
    if (R > 8 && p + 8 <= n) {
        ok &= fused_block(x, y, fb, ahead, p, packed, init, at_end && p + 8 == n, rectify,
                          pool_abs, mode, C, K, 8);
        p += 8;
    }
    if (R > 4 && p + 4 <= n) {
        ok &= fused_block(x, y, fb, ahead, p, packed, init, at_end && p + 4 == n, rectify,
                          pool_abs, mode, C, K, 4);
        p += 4;
    }
    if (R > 2 && p + 2 <= n) {
        ok &= fused_block(x, y, fb, ahead, p, packed, init, at_end && p + 2 == n, rectify,
                          pool_abs, mode, C, K, 2);
        p += 2;
    }
    for (; p < n; p++)
        ok &= fused_block(x, y, fb, ahead, p, packed, init, at_end && p + 1 == n, rectify,
                          pool_abs, mode, C, K, 1);
    return ok;
}

CGDN_INLINE int fused_blocked(const real *x, real *y, const real *packed, const real *beta,
                              ptrdiff_t n, int rectify, int pool_abs, const int mode,
                              const int C, const int K) {
    const int ahead = K == 1 && CGDN_NREG < 32 && sizeof(vec) >= 32;
    const ptrdiff_t M = ahead ? (CGDN_FUSED_AHEAD / C > 0 ? CGDN_FUSED_AHEAD / C : 1) : n;
    real fb[CGDN_FUSED_FB + LANES];
    vec init[CGDN_KMAX];
    ptrdiff_t p;
    int k, ok = 1;
    for (k = 0; k < K; k++)   /* padding lanes start from 1 and get zero terms */
        init[k] = v_load_tail(beta + k * LANES, C - k * LANES < LANES ? C - k * LANES : LANES,
                              (real)1);
    for (p = 0; p < n; p += M)
        ok &= fused_chunk(x + p * C, y + p * C, fb, ahead, packed, init,
                          n - p < M ? n - p : M, p + M >= n, rectify, pool_abs, mode, C, K);
    return ok;
}

/* Whether the block kernel takes C channels: one panel, blocks of at least 4 pixels
 * (AVX2's 2 for K = 3 measured 18% slower than the three passes at C = 24), and little
 * padding in a pixel's last vector: each pixel's vectors are normalized whole (C = 9 in
 * 16 lanes normalizes 7 padding lanes per pixel, where the three passes normalize only
 * the C). How much padding pays depends on the registers and the normalization: with 32
 * registers and reciprocal estimates, up to half a vector (AVX-512 float32, side by side
 * against the three passes on 1 thread: 14-17% faster at C = 9-11, 5% at C = 24, 11% at
 * C = 40, 8-26% on 2 threads; but 4-7% slower at C = 17-18, 14-15 padding lanes, and no
 * faster at C = 20, 12); otherwise up to a quarter (AVX2: 7-17% slower at C = 5 and
 * 9-12; AVX-512 float64, whose exact square roots and divisions cost per lane: 25%
 * slower at C = 5). */
CGDN_INLINE int blocked_fits(ptrdiff_t C) {
    const ptrdiff_t K = (C + LANES - 1) / LANES, padding = K * LANES - C;
    const int cheap_lanes = CGDN_NREG >= 32 && EST_STEPS > 0;
    return K <= CGDN_KMAX && CGDN_FUSED_ROWS(K) >= 4 &&
           (cheap_lanes ? 2 * padding <= LANES : 4 * padding <= LANES);
}

/* A vector of channels and up to half a vector more (LANES < C <= 3 LANES / 2) where
 * blocked_fits refuses them, on ISAs with a cheap transpose (HAS_TRANSPOSE: AVX2
 * float32, C = 9-12). A pixel's last vector would be mostly padding (C = 9: 7 lanes of
 * 8), so each group of LANES pixels is transposed instead: a vector holds one channel
 * of the LANES pixels, the pool of channel i is beta[i] + sum over j of gamma[j, i] f_j
 * with no padding lane, the inputs are normalized in that form and transposed back.
 * The same operations in the same order as the three passes (bit-identical). Side by
 * side with them in one build, (1, 256, 256, C): 14-15% faster at C = 9, 10 and 12 and
 * 8% at 11 on 1 thread, 6-20% on 2; at C = 13 a C harness read 3% only (the C inputs
 * and C sums spill further from the 16 registers), so 13 keeps the three passes.
 * Also C = 3, where a group's rows lie next to each other (3 LANES elements) and the
 * ISA transposes them cheaply (AVX2: 5 in-lane shuffles in, 6 out); one pixel per quad
 * (fused_quads) used 6 lanes of 8, normalized the padding lanes too and splatted each
 * input. Side by side with that in a C harness (AMD EPYC, 1 thread, (65533, 3) in tiles
 * of 336 pixels, float32, all four normalization modes): 25-33% faster, bit-identical. */
CGDN_INLINE int columns_fit(ptrdiff_t C) {
    return HAS_TRANSPOSE && (C == 3 || (C > LANES && 2 * C <= 3 * LANES && !blocked_fits(C)));
}

#if HAS_TRANSPOSE
/* One group of LANES pixels (rows C apart). With `spill`, each row may be read and
 * written a few elements (fewer than LANES / 2) past its last channel, in the next
 * pixel's place, which the group's own later stores or the next group's rewrite; a
 * run's last group is exact (spill 0). y may be x only without spill (every load
 * precedes the stores). */
CGDN_INLINE vrange columns_group(const real *x, real *y, const real *gamma, const real *beta,
                                 int rectify, int pool_abs, const int mode, const int C,
                                 const int spill, vrange range) {
    const int first = C < LANES ? C : LANES, rest = C - first, reach = spill ? LANES : rest;
    vec v[2 * LANES], acc[2 * LANES], f;   /* v_transpose_load fills LANES from v + LANES */
    int i, j;
    v_transpose_load(x, C, first, first, v);
    if (rest > 0) v_transpose_load(x + LANES, C, rest, reach, v + LANES);
    for (i = 0; i < C; i++) {
        v[i] = fused_input(v[i], rectify);
        acc[i] = v_set1(beta[i]);
    }
    for (i = C; i < 2 * LANES; i++) acc[i] = v_set1((real)0);   /* stored, then rewritten */
    for (j = 0; j < C; j++) {
        f = fused_pool_input(v[j], pool_abs);
        for (i = 0; i < C; i++) acc[i] = v_fma(f, v_set1(gamma[j * C + i]), acc[i]);
    }
    for (i = 0; i < C; i++) {
        range = v_range_fold(range, acc[i]);
        acc[i] = normalize_one(v[i], acc[i], mode);
    }
    /* the last channels first: with spill, their stores run into the next pixel's place,
     * which the first channels' stores (or the next group's) then rewrite */
    if (rest > 0) v_transpose_store(acc + LANES, y + LANES, C, rest, reach);
    v_transpose_store(acc, y, C, first, first);
    return range;
}

/* n pixels: whole groups followed by at least one more pixel (spilling), then the last
 * 1 .. LANES pixels: a whole group exactly, or through a buffer in which the last pixel
 * is repeated (its pools are checked again, no new value enters the check). */
CGDN_INLINE int fused_columns(const real *x, real *y, const real *gamma, const real *beta,
                              ptrdiff_t n, int rectify, int pool_abs, const int mode,
                              const int C) {
    real buf[LANES * (LANES + LANES / 2)];
    vrange range = v_range_init();
    ptrdiff_t p = 0, r;
    for (; p + LANES < n; p += LANES)
        range = columns_group(x + p * C, y + p * C, gamma, beta, rectify, pool_abs, mode, C,
                              1, range);
    if (p + LANES == n) {
        range = columns_group(x + p * C, y + p * C, gamma, beta, rectify, pool_abs, mode, C,
                              0, range);
    } else if (p < n) {
        for (r = 0; r < LANES; r++)
            memcpy(buf + r * C, x + (p + r < n ? p + r : n - 1) * C, C * sizeof(real));
        range = columns_group(buf, buf, gamma, beta, rectify, pool_abs, mode, C, 0, range);
        memcpy(y + p * C, buf, (n - p) * C * sizeof(real));
    }
    return v_range_ok(range);
}
#endif

/* Whether fused_rows takes C channels: whole pixels per vector (mix_rows_shared), one
 * GEMM panel with little padding (blocked_fits), or transposed groups (columns_fit). */
static int fused_rows_supported(ptrdiff_t C) {
    return mix_rows_shared(C) || (C >= 1 && (blocked_fits(C) || columns_fit(C)));
}

CGDN_INLINE int fused_rows_c(const real *x, real *y, const real *packed, const real *gamma,
                             const real *beta, ptrdiff_t n, int rectify, int pool_abs,
                             const int mode, const int C) {
    if (C == 1) return fused_single(x, y, gamma, beta, n, rectify, pool_abs, mode);
#if HAS_TRANSPOSE
    if (columns_fit(C)) return fused_columns(x, y, gamma, beta, n, rectify, pool_abs, mode, C);
#endif
#if HAS_QUADS
    if (C == 2 || C == 4) return fused_quads(x, y, gamma, beta, n, rectify, pool_abs, mode, C);
#endif
#if HAS_PERMUTE
    if (2 * C <= LANES) return fused_shared(x, y, gamma, beta, n, rectify, pool_abs, mode, C);
#endif
    if (!blocked_fits(C)) return 0;   /* not fused here: the caller takes three passes */
    return fused_blocked(x, y, packed, beta, n, rectify, pool_abs, mode, C,
                         (C + LANES - 1) / LANES);
}

/* More than 16 channels: C known at run time only, K (the vectors per pixel) a constant */
static int fused_blocked_any(const real *x, real *y, const real *packed, const real *beta,
                             ptrdiff_t n, int rectify, int pool_abs, const int mode,
                             ptrdiff_t C) {
    (void)x, (void)y, (void)packed, (void)beta, (void)n, (void)rectify, (void)pool_abs, (void)mode;
    if (!blocked_fits(C)) return 0;
    /* Only the K that blocked_fits can accept beyond 16 channels are compiled (blocks of
     * at least 4 rows, K LANES > 16): none with 16 registers (AVX2, SSE2), whose blocks of
     * 3 vectors have 2 rows; with 32, every K that is more than 16 lanes. */
    switch ((C + LANES - 1) / LANES) {
#if CGDN_FUSED_ROWS(1) >= 4 && LANES > 16
    case 1: return fused_blocked(x, y, packed, beta, n, rectify, pool_abs, mode, (int)C, 1);
#endif
#if CGDN_FUSED_ROWS(2) >= 4 && 2 * LANES > 16
    case 2: return fused_blocked(x, y, packed, beta, n, rectify, pool_abs, mode, (int)C, 2);
#endif
#if CGDN_FUSED_ROWS(3) >= 4 && 3 * LANES > 16
    case 3: return fused_blocked(x, y, packed, beta, n, rectify, pool_abs, mode, (int)C, 3);
#endif
#if CGDN_KMAX >= 4 && CGDN_FUSED_ROWS(4) >= 4 && 4 * LANES > 16
    case 4: return fused_blocked(x, y, packed, beta, n, rectify, pool_abs, mode, (int)C, 4);
#endif
    default: return 0;
    }
}

/* One function per channel count, holding a copy per normalization mode (the mode a
 * constant in each), instead of one function holding all 64 copies (the always-inline
 * families make each copy large): gcc's time and memory grow faster than a function's
 * size, and split this way a variant compiles in 60-70% of the time and memory (AVX2
 * float32: 45 s and 707 MB before, 27 s and 379 MB with the splits below and in
 * gemm.h). The same code, one call more per tile: bit-identical, and within the noise
 * side by side (C harness, AMD EPYC, AVX2 float32, 1 thread, both tables in one process). */
#define CGDN_FUSED_ROWS_OF(Cn)                                                                 \
    static CGDN_NOINLINE int fused_rows_##Cn(const real *x, real *y, const real *packed,       \
                                            const real *gamma, const real *beta, ptrdiff_t n,  \
                                            int rectify, int pool_abs, int mode) {             \
        CGDN_RETURN_BY_MODE(mode, fused_rows_c(x, y, packed, gamma, beta, n, rectify,         \
                                               pool_abs, M, Cn))                              \
    }
CGDN_FUSED_ROWS_OF(1)
CGDN_FUSED_ROWS_OF(2)
CGDN_FUSED_ROWS_OF(3)
CGDN_FUSED_ROWS_OF(4)
CGDN_FUSED_ROWS_OF(5)
CGDN_FUSED_ROWS_OF(6)
CGDN_FUSED_ROWS_OF(7)
CGDN_FUSED_ROWS_OF(8)
CGDN_FUSED_ROWS_OF(9)
CGDN_FUSED_ROWS_OF(10)
CGDN_FUSED_ROWS_OF(11)
CGDN_FUSED_ROWS_OF(12)
CGDN_FUSED_ROWS_OF(13)
CGDN_FUSED_ROWS_OF(14)
CGDN_FUSED_ROWS_OF(15)
CGDN_FUSED_ROWS_OF(16)

/* One function per normalization mode (see CGDN_FUSED_ROWS_OF). */
#define CGDN_FUSED_ANY_OF(name, M)                                                           \
    static CGDN_NOINLINE int name(const real *x, real *y, const real *packed,                 \
                                  const real *beta, ptrdiff_t n, ptrdiff_t C, int rectify,     \
                                  int pool_abs) {                                              \
        return fused_blocked_any(x, y, packed, beta, n, rectify, pool_abs, M, C);              \
    }
CGDN_FUSED_ANY_OF(fused_any_gdn_sqrt, CGDN_GDN_SQRT)
CGDN_FUSED_ANY_OF(fused_any_igdn_sqrt, CGDN_IGDN_SQRT)
CGDN_FUSED_ANY_OF(fused_any_gdn_one, CGDN_GDN_ONE)
CGDN_FUSED_ANY_OF(fused_any_igdn_one, CGDN_IGDN_ONE)

static int fused_rows_any(const real *x, real *y, const real *packed, const real *beta,
                          ptrdiff_t n, ptrdiff_t C, int rectify, int pool_abs, int mode) {
    switch (mode) {
    case CGDN_GDN_SQRT: return fused_any_gdn_sqrt(x, y, packed, beta, n, C, rectify, pool_abs);
    case CGDN_IGDN_SQRT: return fused_any_igdn_sqrt(x, y, packed, beta, n, C, rectify, pool_abs);
    case CGDN_GDN_ONE: return fused_any_gdn_one(x, y, packed, beta, n, C, rectify, pool_abs);
    default: return fused_any_igdn_one(x, y, packed, beta, n, C, rectify, pool_abs);
    }
}

/* y (n, C) = GDN of x (n, C) for C where fused_rows_supported(C); `packed` is
 * rows_pack's gamma (read for C > LANES / 2); mode is a normalization mode (vec.h);
 * pool_abs: f(v) = |v| (alpha = 1), else v * v (alpha = 2). */
static int fused_rows(const real *x, real *y, const real *packed, const real *gamma,
                      const real *beta, ptrdiff_t n, ptrdiff_t C, int mode, int rectify,
                      int pool_abs) {
    switch (C) {
    case 1: return fused_rows_1(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 2: return fused_rows_2(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 3: return fused_rows_3(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 4: return fused_rows_4(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 5: return fused_rows_5(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 6: return fused_rows_6(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 7: return fused_rows_7(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 8: return fused_rows_8(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 9: return fused_rows_9(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 10: return fused_rows_10(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 11: return fused_rows_11(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 12: return fused_rows_12(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 13: return fused_rows_13(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 14: return fused_rows_14(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 15: return fused_rows_15(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    case 16: return fused_rows_16(x, y, packed, gamma, beta, n, rectify, pool_abs, mode);
    default: return fused_rows_any(x, y, packed, beta, n, C, rectify, pool_abs, mode);
    }
}

/* More channels than one GEMM panel holds (C > CGDN_KMAX * LANES): chunks of about
 * CGDN_WIDE_BYTES of pixels. f(x) of a chunk goes to `work`; then, panel after panel, the
 * GEMM sums the chunk's pools in registers exactly as mix_rows does (from beta, j
 * increasing), checks them and normalizes the chunk's inputs from them, the pools never
 * stored: bit-identical to the three passes. A chunk's inputs are read from memory once,
 * by its f(x), and are still in cache for the normalization; the three passes read the
 * whole tile's inputs twice and store and reload its pools. Stores are tail stores (no
 * spill), but y must not be x: an out-of-range pool is known only after earlier chunks
 * are stored. `work` holds min(n, chunk) C + LANES elements.
 * Chunks of 4 L1 sizes (128 KiB): side by side with the three passes in one build, 1
 * thread, AVX-512 float32: 5-9% faster at C = 128-320, 3% at 96, 0-7% at (8, 64, 64, 192)
 * over three placements of the arrays; chunks of half an L1 were from 7% faster to 12%
 * slower depending on where the arrays lay. */
#ifndef CGDN_WIDE_BYTES
#define CGDN_WIDE_BYTES (4 * CGDN_L1_BYTES)
#endif

CGDN_INLINE int wide_block(const real *x, real *y, real *work, const real *packed,
                           const real *beta, ptrdiff_t C, ptrdiff_t rows, int rectify,
                           int pool_abs, const int mode) {
    fused_pool_run(x, work, rows * C, rectify, pool_abs);
    return mix_rows_to(work, packed, beta, y, rows, C, x, rectify, mode);
}

CGDN_INLINE int fused_wide_mode(const real *x, real *y, real *work, const real *packed,
                                const real *beta, ptrdiff_t n, ptrdiff_t C, int rectify,
                                int pool_abs, const int mode) {
    const ptrdiff_t R = CGDN_ROWS(CGDN_KMAX);
    ptrdiff_t M = CGDN_WIDE_BYTES / (C * (ptrdiff_t)sizeof(real)) / R * R, p;
    int ok = 1;
    if (M < R) M = R;
    for (p = 0; p < n; p += M)
        ok &= wide_block(x + p * C, y + p * C, work, packed, beta, C, n - p < M ? n - p : M,
                         rectify, pool_abs, mode);
    return ok;
}

/* Whether fused_wide takes C channels: more than one panel, on ISAs with 32 registers or
 * FMA (side by side against the three passes, 1 and 2 threads: AVX-512 float32 2-9%
 * faster at C = 65-320, float64 3-11%; AVX2 1-11% faster at C = 28-128 and 320, within 2%
 * at 25 and 192; SSE2, no FMA: 25% slower at C = 13, 3-4% at 16-32, so it keeps the three
 * passes). NEON follows the 32-register rule, unmeasured. */
static int fused_wide_supported(ptrdiff_t C) {
#if CGDN_NREG >= 32 || defined(__FMA__)
    return C > CGDN_KMAX * LANES;
#else
    (void)C;
    return 0;
#endif
}

/* y (n, C) = GDN of x (n, C) for C where fused_wide_supported(C); arguments as
 * fused_rows, and `work` as above. Returns what fused_rows returns. */
/* One function per normalization mode (see CGDN_FUSED_ROWS_OF). */
#define CGDN_FUSED_WIDE_OF(name, M)                                                          \
    static CGDN_NOINLINE int name(const real *x, real *y, real *work, const real *packed,     \
                                  const real *beta, ptrdiff_t n, ptrdiff_t C, int rectify,     \
                                  int pool_abs) {                                              \
        return fused_wide_mode(x, y, work, packed, beta, n, C, rectify, pool_abs, M);          \
    }
CGDN_FUSED_WIDE_OF(fused_wide_gdn_sqrt, CGDN_GDN_SQRT)
CGDN_FUSED_WIDE_OF(fused_wide_igdn_sqrt, CGDN_IGDN_SQRT)
CGDN_FUSED_WIDE_OF(fused_wide_gdn_one, CGDN_GDN_ONE)
CGDN_FUSED_WIDE_OF(fused_wide_igdn_one, CGDN_IGDN_ONE)

static int fused_wide(const real *x, real *y, real *work, const real *packed,
                      const real *beta, ptrdiff_t n, ptrdiff_t C, int mode, int rectify,
                      int pool_abs) {
    switch (mode) {
    case CGDN_GDN_SQRT:
        return fused_wide_gdn_sqrt(x, y, work, packed, beta, n, C, rectify, pool_abs);
    case CGDN_IGDN_SQRT:
        return fused_wide_igdn_sqrt(x, y, work, packed, beta, n, C, rectify, pool_abs);
    case CGDN_GDN_ONE:
        return fused_wide_gdn_one(x, y, work, packed, beta, n, C, rectify, pool_abs);
    default:
        return fused_wide_igdn_one(x, y, work, packed, beta, n, C, rectify, pool_abs);
    }
}

/* ---- channels_first: C rows of n positions ----------------------------------------- */

/* Few channels (C <= CGDN_PLANES_MAX): for each step of V vectors of positions, the C
 * input vectors of each are loaded, f(x) taken, and each output row's pool summed over j
 * in increasing order from beta (as mix_slab does) before one store per row and vector:
 * bit-identical to the three passes. The rows are summed G = CGDN_PLANES_GROUP at a time,
 * G x V independent sums in flight, each broadcast of gamma serving V of them. The C
 * vectors of f and the inputs (kept for the normalization) stay in registers where they
 * fit, else the compiler keeps them on the stack, in L1 (reading the rows of x again
 * could miss there: planes of power-of-two images map to the same cache sets).
 * With 32 registers: G = 4, V = 1, f and x in registers up to C = 16 (4 sums in flight).
 * With 16: f and x mostly on the stack; G = 4 and V = 2 keep 8 sums in flight (the
 * multiply-add latency times the units; 2 rows x 1 vector, as before, waited on it:
 * side by side in a C harness, AMD EPYC, 1 thread, (C, 65536) in tiles of 256
 * positions, 23-37% faster at C = 8-16, 11-16% at C = 1-4; SSE2 9-14% at C = 1-8).
 * CGDN_PLANES_MAX is 16 with 32 registers or FMA; else registers / 2 (SSE2, no FMA: 18%
 * slower than the three passes at C = 16, equal at C = 9).
 * Rows of x are xs apart, rows of y ys apart; a row's vectors never spill (tail stores at
 * the end), but y must not be x: a pool out of range is only known after some rows are
 * stored. Returns what fused_rows returns. */
#if CGDN_NREG >= 32 || defined(__FMA__)
#define CGDN_PLANES_MAX 16
#else
#define CGDN_PLANES_MAX (CGDN_NREG / 2)
#endif
#define CGDN_PLANES_GROUP 4
#define CGDN_PLANES_VECS (CGDN_NREG >= 32 ? 1 : 2)

/* Rows i .. i + G - 1 of V vectors of positions (G, V compile-time constants); vector q
 * of channel j is v[q * CGDN_PLANES_MAX + j] (f likewise), its positions at q * LANES. */
CGDN_INLINE vrange planes_group(const vec *v, const vec *f, real *y, ptrdiff_t ys,
                                const real *gamma, const real *beta, ptrdiff_t left,
                                const int mode, const int C, int i, const int G,
                                const int V, vrange range) {
    vec acc[CGDN_PLANES_VECS][CGDN_PLANES_GROUP];
    int j, r, q;
    for (q = 0; q < V; q++)
        for (r = 0; r < G; r++) acc[q][r] = v_set1(beta[i + r]);
    for (j = 0; j < C; j++)
        for (r = 0; r < G; r++) {
            const vec g = v_set1(gamma[j * C + i + r]);
            for (q = 0; q < V; q++)
                acc[q][r] = v_fma(g, f[q * CGDN_PLANES_MAX + j], acc[q][r]);
        }
    for (r = 0; r < G; r++)
        for (q = 0; q < V; q++) {
            range = v_range_fold(range, acc[q][r]);
            fused_store(y + (i + r) * ys + q * LANES, left - q * LANES,
                        normalize_one(v[q * CGDN_PLANES_MAX + i + r], acc[q][r], mode));
        }
    return range;
}

/* One step of V vectors of positions (left = V LANES, a constant: the loads and stores
 * need no tests, 5-12% faster at C = 12-16 on AVX2 than testing them, within noise on
 * AVX-512, side by side). The last C % G rows form a shorter group. */
CGDN_INLINE vrange planes_step(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys,
                               const real *gamma, const real *beta, ptrdiff_t left,
                               int rectify, int pool_abs, const int mode, const int C,
                               const int V, vrange range) {
    const int G = CGDN_PLANES_GROUP, tail = C % CGDN_PLANES_GROUP;
    vec v[CGDN_PLANES_VECS * CGDN_PLANES_MAX], f[CGDN_PLANES_VECS * CGDN_PLANES_MAX];
    int i, j, q;
    for (q = 0; q < V; q++)
        for (j = 0; j < C; j++) {
            vec in = fused_input(fused_load(x + j * xs + q * LANES, left - q * LANES), rectify);
            v[q * CGDN_PLANES_MAX + j] = in;
            f[q * CGDN_PLANES_MAX + j] = fused_pool_input(in, pool_abs);
        }
    for (i = 0; i + G <= C; i += G)
        range = planes_group(v, f, y, ys, gamma, beta, left, mode, C, i, G, V, range);
    switch (tail) {
    case 1: return planes_group(v, f, y, ys, gamma, beta, left, mode, C, C - 1, 1, V, range);
    case 2: return planes_group(v, f, y, ys, gamma, beta, left, mode, C, C - 2, 2, V, range);
    case 3: return planes_group(v, f, y, ys, gamma, beta, left, mode, C, C - 3, 3, V, range);
    default: return range;
    }
}

CGDN_INLINE int fused_planes_c(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys,
                               const real *gamma, const real *beta, ptrdiff_t n,
                               int rectify, int pool_abs, const int mode, const int C) {
    const int V = CGDN_PLANES_VECS, W = CGDN_PLANES_VECS * LANES;
    vrange range = v_range_init();
    ptrdiff_t p = 0;
    for (; p + W <= n; p += W)
        range = planes_step(x + p, xs, y + p, ys, gamma, beta, W, rectify, pool_abs, mode, C,
                            V, range);
    if (p < n) {
        /* The last n - p < W positions: one whole step through buffers, zero past n (the
         * pools of those lanes are beta, as a tail load's fill gave; never stored back).
         * One copy of the step per channel count and mode instead of three (whole steps
         * of V vectors, of one vector, a partial one): a third of the compile time, the
         * same results; tails are rare (tiles of 256 positions are whole steps). */
        real xb[CGDN_PLANES_MAX * CGDN_PLANES_VECS * LANES];
        real yb[CGDN_PLANES_MAX * CGDN_PLANES_VECS * LANES];
        const ptrdiff_t left = n - p;
        int j;
        for (j = 0; j < C; j++) {
            memcpy(xb + j * W, x + j * xs + p, (size_t)left * sizeof(real));
            memset(xb + j * W + left, 0, (size_t)(W - left) * sizeof(real));
        }
        range = planes_step(xb, W, yb, W, gamma, beta, W, rectify, pool_abs, mode, C, V, range);
        for (j = 0; j < C; j++) memcpy(y + j * ys + p, yb + j * W, (size_t)left * sizeof(real));
    }
    return v_range_ok(range);
}

/* A constant-C copy per channel count; the normalization mode is a constant too up to 8
 * channels, where a step's work is short enough for the mode's branch per output vector
 * to show (side by side in a C harness, AMD EPYC, AVX2 float32, 1 thread: C = 4 9-20%
 * slower with the mode known at run time, C = 5 and 7 4-10%). */
CGDN_INLINE int planes_few(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys,
                           const real *gamma, const real *beta, ptrdiff_t n, ptrdiff_t C,
                           int rectify, int pool_abs, const int mode) {
    switch (C) {
    case 1: return fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode, 1);
    case 2: return fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode, 2);
    case 3: return fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode, 3);
    default: return fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode, 4);
    }
}

/* 5-8 channels: a copy per mode as well, one function per channel count (the mode's
 * branch measured 4-10% at C = 5 and 7, in-process side by side, AMD EPYC, AVX2
 * float32, 1 thread); 9-16 channels take the mode as an argument (3-5%, a third of the
 * compile time of these functions). */
#define CGDN_PLANES_MODES_OF(Cn)                                                               \
    static CGDN_NOINLINE int planes_##Cn(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys,   \
                                         const real *gamma, const real *beta, ptrdiff_t n,     \
                                         int rectify, int pool_abs, int mode) {                \
        CGDN_RETURN_BY_MODE(mode, fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify,       \
                                                 pool_abs, M, Cn))                            \
    }
#define CGDN_PLANES_OF(Cn)                                                                     \
    static CGDN_NOINLINE int planes_##Cn(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys,   \
                                         const real *gamma, const real *beta, ptrdiff_t n,     \
                                         int rectify, int pool_abs, int mode) {                \
        return fused_planes_c(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode, Cn);       \
    }
CGDN_PLANES_MODES_OF(5)
CGDN_PLANES_MODES_OF(6)
CGDN_PLANES_MODES_OF(7)
CGDN_PLANES_MODES_OF(8)
#if CGDN_PLANES_MAX >= 16
CGDN_PLANES_OF(9)
CGDN_PLANES_OF(10)
CGDN_PLANES_OF(11)
CGDN_PLANES_OF(12)
CGDN_PLANES_OF(13)
CGDN_PLANES_OF(14)
CGDN_PLANES_OF(15)
CGDN_PLANES_OF(16)
#endif

static int planes_more(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys, const real *gamma,
                       const real *beta, ptrdiff_t n, ptrdiff_t C, int rectify, int pool_abs,
                       int mode) {
    switch (C) {
    case 5: return planes_5(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 6: return planes_6(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 7: return planes_7(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 8: return planes_8(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
#if CGDN_PLANES_MAX >= 16
    case 9: return planes_9(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 10: return planes_10(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 11: return planes_11(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 12: return planes_12(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 13: return planes_13(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 14: return planes_14(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 15: return planes_15(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
    case 16: return planes_16(x, xs, y, ys, gamma, beta, n, rectify, pool_abs, mode);
#endif
    default: return 0;
    }
}

/* Whether fused_planes takes C channels (C <= CGDN_PLANES_MAX: f(x) of every channel, an
 * accumulator and the normalization's temporaries stay in registers). */
static int fused_planes_supported(ptrdiff_t C) {
    return C >= 1 && C <= CGDN_PLANES_MAX;
}

static int fused_planes(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys, const real *gamma,
                        const real *beta, ptrdiff_t n, ptrdiff_t C, int mode, int rectify,
                        int pool_abs) {
    if (C > 4) return planes_more(x, xs, y, ys, gamma, beta, n, C, rectify, pool_abs, mode);
    CGDN_RETURN_BY_MODE(mode, planes_few(x, xs, y, ys, gamma, beta, n, C, rectify, pool_abs, M))
}
