/* Kernel family: the channel mix, pool = beta + f(x) mixed by gamma, as a
 * register-blocked GEMM. Plain C against the generic names of bind_f32.h / bind_f64.h;
 * kernels.h includes it once per dtype. gamma[j, i] weighs input channel j in the pool
 * of output channel i (TensorFlow's orientation).
 *
 * Both layouts are one product C = init + A @ B over a tile:
 *   channels_last  (mix_rows): A = f (pixels x C), B = gamma, packed in panels of
 *                  columns; C = pool (pixels x C); init = beta per column;
 *   channels_first (mix_slab): A = gamma^T (C x C), B = f (C x positions); C = pool
 *                  (C x positions); init = beta per row.
 * A is read by broadcasts, B by whole vectors. The block shape (R rows x K vectors)
 * comes from the register file (CGDN_ROWS, CGDN_KMAX in vec.h).
 *
 * Every element of C is the sum over j in increasing order, started from init, with one
 * multiply-add per term (fused where the ISA has FMA): the result depends on the shape
 * and the instruction set only, never on the thread count or the blocking. */

/* One block of R rows x K vectors of C; R and K are compile-time constants at every
 * call, so the loops over them unroll and the accumulators live in registers. Returns
 * whether every value computed (padding lanes included) is a positive normal finite
 * number: then the pools need no range check (0 means "check them").
 * What the block stores (`out`): with CGDN_STORE_POOL (a compile-time constant where
 * given) its sums; with a normalization mode (vec.h) the normalized inputs instead,
 * X[r, :] / C[r, :]^eps (or times), X[r, :] at x + r*x_rs, the pools never leaving the
 * registers (bit-identical to storing them and normalizing after). The mode is known
 * at run time only: one copy of the GEMM serves all four, its branches taken once per
 * vector against the depth's multiply-adds. */
CGDN_INLINE int gemm_block(const real *a, ptrdiff_t a_rs,   /* IN  A[r, j] = a[r*a_rs + j] */
                            const real *b, ptrdiff_t b_rs,   /* IN  B[j, :] at b + j*b_rs */
                            real *c, ptrdiff_t c_rs,         /* OUT C[r, :] at c + r*c_rs */
                            ptrdiff_t depth,
                            const vec *col_init,             /* IN  K vectors, or NULL */
                            const real *row_init,            /* IN  R values (if no col_init) */
                            ptrdiff_t last,                  /* lanes stored of the last vector */
                            const real *x, ptrdiff_t x_rs,   /* IN  X (if out is a mode) */
                            int rectify, const int out,
                            const int R, const int K) {
    vec acc[CGDN_RMAX][CGDN_KMAX], bv[CGDN_KMAX];
    vrange range = v_range_init();
    ptrdiff_t j;
    int r, k;
    for (r = 0; r < R; r++)
        for (k = 0; k < K; k++) acc[r][k] = col_init ? col_init[k] : v_set1(row_init[r]);
    for (j = 0; j < depth; j++) {
        for (k = 0; k < K; k++) bv[k] = v_load(b + j * b_rs + k * LANES);
        for (r = 0; r < R; r++) {
            vec av = v_set1(a[r * a_rs + j]);
            for (k = 0; k < K; k++) acc[r][k] = v_fma(av, bv[k], acc[r][k]);
        }
    }
    for (r = 0; r < R; r++) {
        real *cr = c + r * c_rs;
        for (k = 0; k < K; k++) range = v_range_fold(range, acc[r][k]);
        if (out != CGDN_STORE_POOL)
            for (k = 0; k < K; k++) {
                const real *xr = x + r * x_rs + k * LANES;
                vec v = k < K - 1 || last == LANES ? v_load(xr) : v_load_tail(xr, last, (real)0);
                if (rectify) v = v_rectify(v);
                acc[r][k] = normalize_one(v, acc[r][k], out);
            }
        for (k = 0; k < K - 1; k++) v_store(cr + k * LANES, acc[r][k]);
        if (last == LANES)
            v_store(cr + (K - 1) * LANES, acc[r][K - 1]);
        else
            v_store_tail(cr + (K - 1) * LANES, last, acc[r][K - 1]);
    }
    return v_range_ok(range);
}

/* The block of `rows` rows that starts at row r (gemm_rows' steps). */
CGDN_INLINE int gemm_block_at(const real *a, ptrdiff_t a_rs, const real *b, ptrdiff_t b_rs,
                              real *c, ptrdiff_t c_rs, ptrdiff_t depth, const vec *col_init,
                              const real *row_init, ptrdiff_t last, const real *x,
                              ptrdiff_t x_rs, int rectify, const int out, ptrdiff_t r,
                              const int rows, const int K) {
    return gemm_block(a + r * a_rs, a_rs, b, b_rs, c + r * c_rs, c_rs, depth, col_init,
                      row_init ? row_init + r : NULL, last, x ? x + r * x_rs : NULL, x_rs,
                      rectify, out, rows, K);
}

/* All n_rows rows for one panel of K vectors: blocks of CGDN_ROWS(K) rows, then the
 * remainder in blocks of 8, 4, 2 and 1 rows. */
CGDN_INLINE int gemm_rows(const real *a, ptrdiff_t a_rs, const real *b, ptrdiff_t b_rs,
                          real *c, ptrdiff_t c_rs, ptrdiff_t depth, ptrdiff_t n_rows,
                          const vec *col_init, const real *row_init, ptrdiff_t last,
                          const real *x, ptrdiff_t x_rs, int rectify, const int out,
                          const int K) {
    const int R = CGDN_ROWS(K);
    ptrdiff_t r = 0;
    int ok = 1;
    for (; r + R <= n_rows; r += R)
        ok &= gemm_block_at(a, a_rs, b, b_rs, c, c_rs, depth, col_init, row_init, last, x,
                            x_rs, rectify, out, r, R, K);
    if (R > 8 && r + 8 <= n_rows) {
        ok &= gemm_block_at(a, a_rs, b, b_rs, c, c_rs, depth, col_init, row_init, last, x,
                            x_rs, rectify, out, r, 8, K);
        r += 8;
    }
    if (R > 4 && r + 4 <= n_rows) {
        ok &= gemm_block_at(a, a_rs, b, b_rs, c, c_rs, depth, col_init, row_init, last, x,
                            x_rs, rectify, out, r, 4, K);
        r += 4;
    }
    if (R > 2 && r + 2 <= n_rows) {
        ok &= gemm_block_at(a, a_rs, b, b_rs, c, c_rs, depth, col_init, row_init, last, x,
                            x_rs, rectify, out, r, 2, K);
        r += 2;
    }
    for (; r < n_rows; r++)
        ok &= gemm_block_at(a, a_rs, b, b_rs, c, c_rs, depth, col_init, row_init, last, x,
                            x_rs, rectify, out, r, 1, K);
    return ok;
}

/* One panel of K (1 .. CGDN_KMAX) vectors of columns: a constant-K copy per case.
 * Returns what gemm_block returns, for all blocks. Inlined, so that a caller with a
 * compile-time depth and row stride (mix_rows for few channels) gets them as constants. */
CGDN_INLINE int gemm_cols(const real *a, ptrdiff_t a_rs, const real *b, ptrdiff_t b_rs,
                          real *c, ptrdiff_t c_rs, ptrdiff_t depth, ptrdiff_t n_rows,
                          const vec *col_init, const real *row_init, ptrdiff_t last,
                          const real *x, ptrdiff_t x_rs, int rectify, const int out, int K) {
    switch (K) {
    case 1: return gemm_rows(a, a_rs, b, b_rs, c, c_rs, depth, n_rows, col_init, row_init, last, x, x_rs, rectify, out, 1);
    case 2: return gemm_rows(a, a_rs, b, b_rs, c, c_rs, depth, n_rows, col_init, row_init, last, x, x_rs, rectify, out, 2);
#if CGDN_KMAX >= 4
    case 3: return gemm_rows(a, a_rs, b, b_rs, c, c_rs, depth, n_rows, col_init, row_init, last, x, x_rs, rectify, out, 3);
    default: return gemm_rows(a, a_rs, b, b_rs, c, c_rs, depth, n_rows, col_init, row_init, last, x, x_rs, rectify, out, 4);
#else
    default: return gemm_rows(a, a_rs, b, b_rs, c, c_rs, depth, n_rows, col_init, row_init, last, x, x_rs, rectify, out, 3);
#endif
    }
}

/* ---- channels_last: pool (n, C) = beta + f (n, C) @ gamma ---------------------------- */

/* Vectors in the panel that starts at column col0: CGDN_KMAX, or what is left. */
static ptrdiff_t rows_panel_width(ptrdiff_t C, ptrdiff_t col0) {
    ptrdiff_t left = (C - col0 + LANES - 1) / LANES;
    return left < CGDN_KMAX ? left : CGDN_KMAX;
}

/* Elements of gamma packed in panels (see rows_pack). */
static ptrdiff_t rows_packed_size(ptrdiff_t C) {
    return C * ((C + LANES - 1) / LANES) * LANES;
}

/* Panel q (columns col0 .. col0 + W - 1, W = its width in lanes) holds, for every input
 * channel j, gamma[j, col0 : col0 + W], zero past column C; it starts at C * col0. */
static void rows_pack(const real *gamma, ptrdiff_t C, real *packed) {
    ptrdiff_t col0 = 0, j, i;
    while (col0 < C) {
        ptrdiff_t width = rows_panel_width(C, col0) * LANES;
        real *panel = packed + C * col0;
        for (j = 0; j < C; j++)
            for (i = 0; i < width; i++)
                panel[j * width + i] = col0 + i < C ? gamma[j * C + col0 + i] : (real)0;
        col0 += width;
    }
}

/* Any C; rows of f, c and x are C apart. With `out` CGDN_STORE_POOL, c receives the
 * pools: with one panel (C <= CGDN_KMAX * LANES) each pixel's last vector is stored
 * whole, the lanes past C spilling into the next pixel's place, which is written after
 * it (the last pixel's spill lands in the caller's padding); with several panels the last
 * vector of each pixel is stored with a tail store. With a normalization mode (vec.h), c
 * receives x normalized by the pools, which never leave the registers (tail stores). */
CGDN_INLINE int mix_rows_to(const real *f, const real *packed, const real *beta, real *c,
                            ptrdiff_t n, const ptrdiff_t C, const real *x, int rectify,
                            const int out) {
    const int spill = out == CGDN_STORE_POOL && C <= CGDN_KMAX * LANES;
    ptrdiff_t col0 = 0;
    int ok = 1;
    while (col0 < C) {
        ptrdiff_t K = rows_panel_width(C, col0), k;
        ptrdiff_t last = C - (col0 + (K - 1) * LANES);   /* lanes of C in the last vector */
        if (last > LANES) last = LANES;
        vec init[CGDN_KMAX];
        for (k = 0; k < K; k++) {
            ptrdiff_t left = C - (col0 + k * LANES);
            /* padding lanes start from 1 and get zero terms: they pass the range check */
            init[k] = v_load_tail(beta + col0 + k * LANES, left < LANES ? left : LANES, (real)1);
        }
        ok &= gemm_cols(f, C, packed + C * col0, K * LANES, c + col0, C, C, n, init, NULL,
                        spill ? LANES : last, x ? x + col0 : NULL, C, rectify, out, (int)K);
        col0 += K * LANES;
    }
    return ok;
}

CGDN_INLINE int mix_rows_blocked(const real *f, const real *packed, const real *beta,
                                 real *pool, ptrdiff_t n, const ptrdiff_t C) {
    return mix_rows_to(f, packed, beta, pool, n, C, NULL, 0, CGDN_STORE_POOL);
}

/* mix_rows_blocked for a channel count known only at run time. */
static int mix_rows_blocked_any(const real *f, const real *packed, const real *beta,
                                real *pool, ptrdiff_t n, ptrdiff_t C) {
    return mix_rows_blocked(f, packed, beta, pool, n, C);
}

/* gamma's rows and beta tiled over the m = LANES / C whole pixels of a vector (lanes
 * past m C: beta 1, gamma 0, so that they start from 1, get zero terms and pass the range
 * check): g[j] holds gamma[j, :] m times, b0 beta m times. */
CGDN_INLINE void rows_tiled(const real *gamma, const real *beta, const int C, vec *g,
                            vec *b0) {
    const int used = (LANES / C) * C;
    real t[LANES];
    int l, j;
    for (l = 0; l < LANES; l++) t[l] = l < used ? beta[l % C] : (real)1;
    *b0 = v_load(t);
    for (j = 0; j < C; j++) {
        for (l = 0; l < LANES; l++) t[l] = l < used ? gamma[j * C + l % C] : (real)0;
        g[j] = v_load(t);
    }
}

#if HAS_PERMUTE
/* Few channels (2 C <= LANES): one vector holds m = LANES / C whole pixels. For each
 * input channel j a permutation spreads f[p, j] over pixel p's lanes, and one FMA with
 * gamma[j, :] tiled m times adds its terms for all m pixels. shared_setup makes the
 * permutations and the tiled rows (rows_tiled); shared_pool mixes one vector of f. */
CGDN_INLINE void shared_setup(const real *gamma, const real *beta, const int C,
                              vperm *idx, vec *g, vec *b0) {
    const int used = (LANES / C) * C;
    int lane[LANES];
    int l, j;
    rows_tiled(gamma, beta, C, g, b0);
    for (j = 0; j < C; j++) {
        for (l = 0; l < LANES; l++) lane[l] = l < used ? (l / C) * C + j : 0;
        idx[j] = v_perm_make(lane);
    }
}

CGDN_INLINE vec shared_pool(vec f, const vperm *idx, const vec *g, vec b0, const int C) {
    vec acc = b0;
    int j;
    for (j = 0; j < C; j++) acc = v_fma(v_permute(f, idx[j]), g[j], acc);
    return acc;
}

/* Needs f readable LANES elements past each group (the caller's padding) and spills
 * like mix_rows_blocked. */
CGDN_INLINE int mix_rows_shared_body(const real *f, const real *gamma, const real *beta,
                                     real *pool, ptrdiff_t n, const int C) {
    const int m = LANES / C;
    vperm idx[LANES / 2 > 0 ? LANES / 2 : 1];
    vec g[LANES / 2 > 0 ? LANES / 2 : 1], b0, acc;
    vrange range = v_range_init();
    ptrdiff_t p;
    shared_setup(gamma, beta, C, idx, g, &b0);
    for (p = 0; p < n; p += m) {
        acc = shared_pool(v_load(f + p * C), idx, g, b0, C);
        range = v_range_fold(range, acc);
        v_store(pool + p * C, acc);
    }
    return v_range_ok(range);
}
#endif

/* C = 1: pool = beta + gamma f, elementwise. */
CGDN_INLINE int mix_rows_single(const real *f, const real *gamma, const real *beta,
                                real *pool, ptrdiff_t n) {
    const vec g = v_set1(gamma[0]), b0 = v_set1(beta[0]);
    vrange range = v_range_init();
    ptrdiff_t p = 0;
    vec acc;
    for (; p + LANES <= n; p += LANES) {
        acc = v_fma(v_load(f + p), g, b0);
        range = v_range_fold(range, acc);
        v_store(pool + p, acc);
    }
    if (p < n) {
        acc = v_fma(v_load_tail(f + p, n - p, (real)0), g, b0);
        range = v_range_fold(range, acc);   /* the tail's fill lanes: 0 * g + beta */
        v_store_tail(pool + p, n - p, acc);
    }
    return v_range_ok(range);
}

#define CGDN_MIX_ROWS_OF(Cn)                                                                   \
    static CGDN_NOINLINE int mix_rows_##Cn(const real *f, const real *packed, const real *beta, \
                                           real *pool, ptrdiff_t n) {                           \
        return mix_rows_blocked(f, packed, beta, pool, n, Cn);                                  \
    }
CGDN_MIX_ROWS_OF(2)
CGDN_MIX_ROWS_OF(3)
CGDN_MIX_ROWS_OF(4)
CGDN_MIX_ROWS_OF(5)
CGDN_MIX_ROWS_OF(6)
CGDN_MIX_ROWS_OF(7)
CGDN_MIX_ROWS_OF(8)
CGDN_MIX_ROWS_OF(9)
CGDN_MIX_ROWS_OF(10)
CGDN_MIX_ROWS_OF(11)
CGDN_MIX_ROWS_OF(12)
CGDN_MIX_ROWS_OF(13)
CGDN_MIX_ROWS_OF(14)
CGDN_MIX_ROWS_OF(15)
CGDN_MIX_ROWS_OF(16)

/* Whether mix_rows takes the shared-lanes path for C channels (then it needs no packing). */
static int mix_rows_shared(ptrdiff_t C) {
    return C == 1 || (HAS_PERMUTE && 2 * C <= LANES);
}

/* pool (n, C) = beta + f (n, C) @ gamma. `packed` is rows_pack's (unused when
 * mix_rows_shared(C)); pool needs LANES elements of padding past n * C, and f LANES
 * readable elements past n * C. Returns 1 if every pool is certainly a positive normal
 * finite number, 0 if the caller must check (a padding lane may be the cause). */
static int mix_rows(const real *f, const real *packed, const real *gamma, const real *beta,
                    real *pool, ptrdiff_t n, ptrdiff_t C) {
    if (C == 1) return mix_rows_single(f, gamma, beta, pool, n);
#if HAS_PERMUTE
    if (2 * C <= LANES) {
        switch (C) {
#if LANES >= 4
        case 2: return mix_rows_shared_body(f, gamma, beta, pool, n, 2);
#endif
#if LANES >= 6
        case 3: return mix_rows_shared_body(f, gamma, beta, pool, n, 3);
#endif
#if LANES >= 8
        case 4: return mix_rows_shared_body(f, gamma, beta, pool, n, 4);
#endif
#if LANES >= 16
        case 5: return mix_rows_shared_body(f, gamma, beta, pool, n, 5);
        case 6: return mix_rows_shared_body(f, gamma, beta, pool, n, 6);
        case 7: return mix_rows_shared_body(f, gamma, beta, pool, n, 7);
        case 8: return mix_rows_shared_body(f, gamma, beta, pool, n, 8);
#endif
        default: break;
        }
    }
#endif
    /* Up to 16 channels, a copy per channel count: f's offsets become constants (no
     * index registers to spill), 13-17% faster on AVX-512 at C = 9-16 and 27-33% on
     * AVX2 at C = 5-8, timed alone; the same arithmetic. One function each (mix_rows_2
     * ...), compiled alone. */
    switch (C) {
    case 2: return mix_rows_2(f, packed, beta, pool, n);
    case 3: return mix_rows_3(f, packed, beta, pool, n);
    case 4: return mix_rows_4(f, packed, beta, pool, n);
    case 5: return mix_rows_5(f, packed, beta, pool, n);
    case 6: return mix_rows_6(f, packed, beta, pool, n);
    case 7: return mix_rows_7(f, packed, beta, pool, n);
    case 8: return mix_rows_8(f, packed, beta, pool, n);
    case 9: return mix_rows_9(f, packed, beta, pool, n);
    case 10: return mix_rows_10(f, packed, beta, pool, n);
    case 11: return mix_rows_11(f, packed, beta, pool, n);
    case 12: return mix_rows_12(f, packed, beta, pool, n);
    case 13: return mix_rows_13(f, packed, beta, pool, n);
    case 14: return mix_rows_14(f, packed, beta, pool, n);
    case 15: return mix_rows_15(f, packed, beta, pool, n);
    case 16: return mix_rows_16(f, packed, beta, pool, n);
    default: return mix_rows_blocked_any(f, packed, beta, pool, n, C);
    }
}

/* ---- channels_first: pool (C, n) = beta + gamma^T (C, C) @ f (C, n) ---------------- */

/* Row stride of f and pool in a channels_first tile of n positions: whole vectors. */
static ptrdiff_t slab_stride(ptrdiff_t n) {
    return (n + LANES - 1) / LANES * LANES;
}

/* Vectors of positions per block of the slab mix at C channels. The block's columns of
 * f (C rows of K vectors) are read again for every block of rows: keep them within
 * CGDN_L1_BYTES, but at least 2 vectors wide (with 1 the loads outnumber the FMAs).
 * Measured at C = 192, AVX-512: 214 GFLOP/s against 198 without the limit. */
static ptrdiff_t slab_panel(ptrdiff_t C) {
    ptrdiff_t k = CGDN_L1_BYTES / (C * LANES * (ptrdiff_t)sizeof(real));
    if (k > CGDN_KMAX) k = CGDN_KMAX;
    if (k < 2) k = CGDN_KMAX < 2 ? CGDN_KMAX : 2;
    return k;
}

/* f rows are slab_stride(n) apart, c rows c_rs; gamma_t is gamma transposed:
 * gamma_t[i, j]. With `out` CGDN_STORE_POOL, c receives the pools, whole vectors (lanes
 * past n are computed from whatever f holds there and never read back); with a
 * normalization mode, the normalized x (rows x_rs apart), lanes past n never stored.
 * Returns what mix_rows returns (lanes past n may cause a 0). */
CGDN_INLINE int mix_slab_to(const real *f, const real *gamma_t, const real *beta, real *c,
                            ptrdiff_t c_rs, ptrdiff_t n, ptrdiff_t C, const real *x,
                            ptrdiff_t x_rs, int rectify, const int out) {
    const ptrdiff_t stride = slab_stride(n), n_vec = stride / LANES, k_max = slab_panel(C);
    ptrdiff_t k0 = 0;
    int ok = 1;
    while (k0 < n_vec) {
        ptrdiff_t K = n_vec - k0 < k_max ? n_vec - k0 : k_max;
        ptrdiff_t last = out == CGDN_STORE_POOL || k0 + K < n_vec ? LANES
                                                                  : n - (n_vec - 1) * LANES;
        ok &= gemm_cols(gamma_t, C, f + k0 * LANES, stride, c + k0 * LANES, c_rs, C, C,
                        NULL, beta, last, x ? x + k0 * LANES : NULL, x_rs, rectify, out,
                        (int)K);
        k0 += K;
    }
    return ok;
}

/* pool (C, slab_stride(n)) from f (C, slab_stride(n)). */
static int mix_slab(const real *f, const real *gamma_t, const real *beta, real *pool,
                    ptrdiff_t n, ptrdiff_t C) {
    return mix_slab_to(f, gamma_t, beta, pool, slab_stride(n), n, C, NULL, 0, 0,
                       CGDN_STORE_POOL);
}

/* ---- channels_first: the mix with the normalization in its blocks ----------------- */

/* y = x normalized by beta + f mixed by gamma (f computed in a pass before, as for
 * mix_slab): each block of pools is normalized in registers (mode: a normalization
 * mode, vec.h) and never stored; bit-identical to mix_slab followed by normalize. x rows
 * are xs apart, y rows ys apart; y must not be x (a block's stores precede later blocks'
 * reads of x). Returns what mix_slab returns; if 0, y holds garbage and the caller takes
 * the passes that check each pixel. */
static int mix_slab_norm(const real *x, ptrdiff_t xs, real *y, ptrdiff_t ys, const real *f,
                         const real *gamma_t, const real *beta, ptrdiff_t n, ptrdiff_t C,
                         int mode, int rectify) {
#if CGDN_NREG >= 32
    return mix_slab_to(f, gamma_t, beta, y, ys, n, C, x, xs, rectify, mode);
#else   /* never taken (mix_slab_norm_supported): not compiled */
    (void)x, (void)xs, (void)y, (void)ys, (void)f, (void)gamma_t, (void)beta, (void)n;
    (void)C, (void)mode, (void)rectify;
    return 0;
#endif
}

/* Whether mix_slab_norm is the faster way at C channels (measured at 1 thread against
 * mix_slab and a normalization pass, side by side in one process):
 * - with 32 registers, when a block has at most 6 rows: 3-16% faster at C = 24-128 on
 *   AVX-512. A block's rows of x and y are whole planes apart, which for power-of-two
 *   images map to one set of the L1 cache: 12 rows of each (AVX-512 at C >= 192)
 *   measured up to 28% slower;
 * - never with 16 registers: the block already fills them (AVX2: 5-28% slower at
 *   C = 24-320). */
static int mix_slab_norm_supported(ptrdiff_t C) {
    return CGDN_NREG >= 32 && CGDN_ROWS(slab_panel(C)) <= 6;
}

/* ---- plain product for the gradients: c (n_rows, n_cols) = a @ b ------------------- */

/* a[r, j] at a + r*a_rs + j (depth j), b row j at b + j*b_rs, c row r at c + r*c_rs.
 * Every row of b must be readable LANES elements past n_cols (the last row included):
 * the last vector of a row may read into padding, whose lanes are never stored.
 * Inline: only the float64 tables take it (the density functions' products). */
static inline void gemm_plain(const real *a, ptrdiff_t a_rs, const real *b, ptrdiff_t b_rs,
                              real *c, ptrdiff_t c_rs, ptrdiff_t depth, ptrdiff_t n_rows,
                              ptrdiff_t n_cols) {
    vec zero[CGDN_KMAX];
    ptrdiff_t col0 = 0, k;
    for (k = 0; k < CGDN_KMAX; k++) zero[k] = v_set1((real)0);
    while (col0 < n_cols) {
        ptrdiff_t K = rows_panel_width(n_cols, col0);
        ptrdiff_t last = n_cols - (col0 + (K - 1) * LANES);
        if (last > LANES) last = LANES;
        (void)gemm_cols(a, a_rs, b + col0, b_rs, c + col0, c_rs, depth, n_rows, zero, NULL,
                        last, NULL, 0, 0, CGDN_STORE_POOL, (int)K);
        col0 += K * LANES;
    }
}
