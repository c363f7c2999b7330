/* Kernel family: one tile, everything that runs inside it (variant.c includes it after
 * the other families, for one dtype). The core (cgdn/_core.pyx) picks the tiles and
 * runs them on its threads; each tile comes here once, through the variant's table.
 *
 * A tile is processed while it is in cache: the pool input f(x) goes to scratch, is
 * mixed across channels (gemm.h) into beta + pool, and the output is written from it;
 * or, where the registers allow, in one pass (fused.h), bit-identical. `out` may be `x`:
 * every element of x is read before the element of out at the same place is written.
 *
 * A pixel needs the careful path when beta + pool is out of range although all its inputs
 * are finite: zero, subnormal, infinite or NaN (x = 1e30 in float32 squares to inf;
 * inf * 0 in the mix gives NaN), or above the pool range's top (vec.h: 1/n would flush
 * to zero), or, for epsilon > 1 and not 1, where n ** epsilon would overflow or become
 * subnormal; or where gamma is so large against beta (t->underflow_risk) that a pool
 * input f(x) lost to underflow could matter, when an input is that small. With a NaN or
 * Inf input a pixel has no finite answer, and its NaN stays confined to it. A tile
 * holding such a pixel is reported and left unwritten (so even in place its input is
 * intact); the core's rescue runs the tile again with `check` off, into a temporary, and
 * finishes the pixels reported here. */

CGDN_INLINE real tile_rectified(real v, int rectify) {
    return rectify && v < 0 ? (real)0 : v;   /* NaN stays NaN, as TensorFlow's relu */
}

/* The range beta + pool must lie in for the fast arithmetic to keep the answer, as bit
 * patterns: the pool range (vec.h), which the kernels check on the fly; for epsilon > 1
 * taken by pow, narrowed to where n ** epsilon stays normal (with a margin for pow's
 * rounding), which only the passes here check. Returns whether it is narrowed. */
static int tile_pool_range(const cgdn_settings *s, real_bits *lo, real_bits *hi) {
    real l = REAL_POOL_MIN, h = REAL_POOL_MAX;
    int narrowed = s->fast_mode < 0 && s->epsilon > 1;
    if (narrowed) {
        const double a = pow((double)REAL_MIN, 1 / s->epsilon) * (1 + 1e-6);
        const double b = pow((double)REAL_MAX, 1 / s->epsilon) * (1 - 1e-6);
        if (a > l) l = (real)a;
        if (b < h) h = (real)b;
    }
    memcpy(lo, &l, sizeof l);
    memcpy(hi, &h, sizeof h);
    return narrowed;
}

/* f(x) of n elements into f */
static void tile_pool_input(const real *x, real *f, ptrdiff_t n, const cgdn_settings *s) {
    const real alpha = (real)s->alpha;
    const int rectify = s->rectify;
    ptrdiff_t k;
    if (s->pool_mode == CGDN_POOL_SQUARE) {
        if (rectify) {
            for (k = 0; k < n; k++) {
                real v = tile_rectified(x[k], 1);
                f[k] = v * v;
            }
        } else {
            for (k = 0; k < n; k++) f[k] = x[k] * x[k];
        }
    } else if (s->pool_mode == CGDN_POOL_ABS) {
        for (k = 0; k < n; k++) f[k] = real_fabs(tile_rectified(x[k], rectify));
    } else {
        for (k = 0; k < n; k++) f[k] = real_pow(real_fabs(tile_rectified(x[k], rectify)), alpha);
    }
}

/* out = x normalized by n (beta + pool, in range), count elements; out may be x */
static void tile_normalize(const real *x, const real *n, real *out, ptrdiff_t count,
                           const cgdn_settings *s) {
    const real epsilon = (real)s->epsilon;
    ptrdiff_t k;
    if (s->fast_mode >= 0) {
        normalize(x, n, out, count, s->fast_mode, s->rectify);
        return;
    }
    for (k = 0; k < count; k++) {
        real root = real_pow(n[k], epsilon);
        if (s->inverse)
            out[k] = tile_rectified(x[k], s->rectify) * root;
        else
            out[k] = tile_rectified(x[k], s->rectify) / root;
    }
}

/* Whether some x[k * stride], k < count, is non-zero and so small that |x| ** alpha
 * underflows (is subnormal or zero): below MIN ** (1 / alpha), with a margin. */
static int tile_tiny_inputs(const real *x, ptrdiff_t stride, ptrdiff_t count,
                            const cgdn_settings *s) {
    const real below = (real)(pow((double)REAL_MIN, 1 / s->alpha) * (1 + 1e-6));
    ptrdiff_t k;
    int tiny = 0;
    for (k = 0; k < count; k++) {
        const real a = real_fabs(x[k * stride]);
        tiny |= (a > 0) & (a < below);
    }
    return tiny;
}

static int tile_pixel_bad(const void *xv, ptrdiff_t x_stride, const void *nv,
                          ptrdiff_t n_stride, const cgdn_tile *t, const cgdn_settings *s) {
    const real *x = (const real *)xv, *n = (const real *)nv;
    const ptrdiff_t C = t->n_ch;
    real_bits lo, hi;
    ptrdiff_t i;
    int pool_bad = t->underflow_risk && tile_tiny_inputs(x, x_stride, C, s);
    tile_pool_range(s, &lo, &hi);
    for (i = 0; i < C; i++) pool_bad |= any_out_of_range(n + i * n_stride, 1, lo, hi);
    if (!pool_bad) return 0;
    for (i = 0; i < C; i++)
        if (!(x[i * x_stride] - x[i * x_stride] == 0)) return 0;   /* inf or NaN input */
    return 1;
}

static int tile_mixer_shared(ptrdiff_t C) {
    return mix_rows_shared(C);
}

static ptrdiff_t tile_mixer_size(ptrdiff_t C, int channels_last) {
    if (!channels_last) return C * C;
    return rows_packed_size(C) > 1 ? rows_packed_size(C) : 1;
}

static void tile_make_mixer(const void *gamma_v, ptrdiff_t C, int channels_last, void *m_v) {
    const real *gamma = (const real *)gamma_v;
    real *m = (real *)m_v;
    ptrdiff_t i, j;
    if (channels_last) {
        rows_pack(gamma, C, m);
        return;
    }
    for (i = 0; i < C; i++)
        for (j = 0; j < C; j++) m[i * C + j] = gamma[j * C + i];
}

/* Whether a pool input lost to underflow could change a pool by more than ~64 ulps: a
 * subnormal or zero f(x) is off by at most the subnormal step, MIN 2^(1-p), so a pool's
 * error is at most (sum_j gamma[j, i]) MIN 2^(1-p), against a pool of at least
 * max(beta[i], MIN) (smaller pools take the careful path anyway). With beta >= 1e-30
 * (float32) that needs a column of gamma summing to 1e9 or more; where C times gamma's
 * largest entry (t->gamma_max) rules that out, gamma is not read. */
static int tile_underflow_risk(const cgdn_tile *t) {
    enum { BLOCK = 64 };
    const real *beta = (const real *)t->beta, *gamma = (const real *)t->gamma;
    const ptrdiff_t C = t->n_ch;
    real column[BLOCK];     /* in the dtype: a sum that overflows is a risk, rightly */
    double least = REAL_MAX;    /* the smallest max(beta[i], MIN) */
    ptrdiff_t i0, i, j, n;
    for (i = 0; i < C; i++)
        if (beta[i] < least) least = beta[i];
    if (least < REAL_MIN) least = REAL_MIN;
    if ((double)C * t->gamma_max <= 32 * (least / REAL_MIN)) return 0;
    for (i0 = 0; i0 < C; i0 += BLOCK) {   /* columns summed side by side, along rows */
        n = C - i0 < BLOCK ? C - i0 : BLOCK;
        for (i = 0; i < n; i++) column[i] = 0;
        for (j = 0; j < C; j++)
            for (i = 0; i < n; i++) column[i] += gamma[j * C + i0 + i];
        for (i = 0; i < n; i++) {
            const double at_least = beta[i0 + i] > REAL_MIN ? beta[i0 + i] : REAL_MIN;
            if ((double)column[i] > 32 * (at_least / REAL_MIN)) return 1;
        }
    }
    return 0;
}

static void tile_plan(cgdn_tile *t) {
    t->fused = fused_rows_supported(t->n_ch);
    t->fused_wide = !t->fused && fused_wide_supported(t->n_ch);
    t->fused_planes = fused_planes_supported(t->n_ch);
    t->slab_norm = mix_slab_norm_supported(t->n_ch);
    t->underflow_risk = tile_underflow_risk(t);
}

static int tile_last(const void *xv, void *outv, const cgdn_tile *t, void *fv, void *poolv,
                     ptrdiff_t n_rows, const cgdn_settings *s, int check) {
    const real *x = (const real *)xv, *beta = (const real *)t->beta;
    const real *gamma = (const real *)t->gamma, *mixer = (const real *)t->mixer;
    real *out = (real *)outv, *f = (real *)fv, *pool = (real *)poolv;
    const ptrdiff_t C = t->n_ch;
    real_bits lo, hi;
    int narrowed;
    ptrdiff_t r;
    if (check && (t->fused || t->fused_wide) && s->fast_mode >= 0 &&
        s->pool_mode != CGDN_POOL_POW && !t->underflow_risk) {
        /* one pass, in registers; in place it writes to scratch first (its whole-vector
         * stores run ahead of the inputs still to read, and a pool out of range is known
         * only after earlier pixels are stored). A pool out of range sends the tile
         * through the three passes below, which check every pixel. */
        real *dst = out == x ? f : out, *work = out == x ? pool : f;
        int done;
        if (t->fused)
            done = fused_rows(x, dst, mixer, gamma, beta, n_rows, C, s->fast_mode, s->rectify,
                              s->pool_mode == CGDN_POOL_ABS);
        else
            done = fused_wide(x, dst, work, mixer, beta, n_rows, C, s->fast_mode, s->rectify,
                              s->pool_mode == CGDN_POOL_ABS);
        if (done) {
            if (dst != out) memcpy(out, dst, (size_t)(n_rows * C) * sizeof(real));
            return 0;
        }
    }
    narrowed = tile_pool_range(s, &lo, &hi) | t->underflow_risk;
    tile_pool_input(x, f, n_rows * C, s);
    /* the mix checks the pool range on the fly; only a doubt (or a narrower range) costs
     * a pass */
    if ((!mix_rows(f, mixer, gamma, beta, pool, n_rows, C) || narrowed) && check &&
        (any_out_of_range(pool, n_rows * C, lo, hi) ||
         (t->underflow_risk && tile_tiny_inputs(x, 1, n_rows * C, s))))
        for (r = 0; r < n_rows; r++)
            if (tile_pixel_bad(x + r * C, 1, pool + r * C, 1, t, s)) return 1;
    tile_normalize(x, pool, out, n_rows * C, s);
    return 0;
}

/* n elements of each of n_rows rows: a channels_first tile computed in scratch, to out */
static void tile_copy_rows(const real *src, ptrdiff_t src_stride, real *dst,
                           ptrdiff_t dst_stride, ptrdiff_t n_rows, ptrdiff_t n) {
    ptrdiff_t i;
    for (i = 0; i < n_rows; i++)
        memcpy(dst + i * dst_stride, src + i * src_stride, (size_t)n * sizeof(real));
}

static int tile_first(const void *xv, void *outv, const cgdn_tile *t, void *fv, void *poolv,
                      ptrdiff_t n_pos, ptrdiff_t row_stride, ptrdiff_t out_stride,
                      const cgdn_settings *s, int check) {
    const real *x = (const real *)xv, *beta = (const real *)t->beta;
    const real *gamma = (const real *)t->gamma, *mixer = (const real *)t->mixer;
    real *out = (real *)outv, *f = (real *)fv, *pool = (real *)poolv;
    const ptrdiff_t C = t->n_ch, stride = slab_stride(n_pos);
    real_bits lo, hi;
    int narrowed;
    ptrdiff_t i, k;
    if (check && t->fused_planes && s->fast_mode >= 0 && s->pool_mode != CGDN_POOL_POW &&
        !t->underflow_risk) {
        /* one pass, in registers, as tile_last; in place through scratch */
        real *dst = out == x ? f : out;
        const ptrdiff_t dst_stride = out == x ? stride : out_stride;
        if (fused_planes(x, row_stride, dst, dst_stride, gamma, beta, n_pos, C, s->fast_mode,
                         s->rectify, s->pool_mode == CGDN_POOL_ABS)) {
            if (dst != out) tile_copy_rows(dst, dst_stride, out, out_stride, C, n_pos);
            return 0;
        }
    }
    for (i = 0; i < C; i++) tile_pool_input(x + i * row_stride, f + i * stride, n_pos, s);
    if (check && t->slab_norm && s->fast_mode >= 0 && !t->underflow_risk) {
        /* two passes: the mix normalizes each block of pools in registers (in place
         * through scratch, as above); a pool out of range sends the tile on to the passes
         * below, f(x) already computed. f's lanes past n_pos are zeroed so that their
         * pools (beta) pass the mix's range check */
        real *dst = out == x ? pool : out;
        const ptrdiff_t dst_stride = out == x ? stride : out_stride;
        if (stride != n_pos)
            for (i = 0; i < C; i++)
                memset(f + i * stride + n_pos, 0, (size_t)(stride - n_pos) * sizeof(real));
        if (mix_slab_norm(x, row_stride, dst, dst_stride, f, mixer, beta, n_pos, C,
                          s->fast_mode, s->rectify)) {
            if (dst != out) tile_copy_rows(dst, dst_stride, out, out_stride, C, n_pos);
            return 0;
        }
    }
    narrowed = tile_pool_range(s, &lo, &hi) | t->underflow_risk;
    if ((!mix_slab(f, mixer, beta, pool, n_pos, C) || narrowed) && check)
        for (i = 0; i < C; i++)
            if (any_out_of_range(pool + i * stride, n_pos, lo, hi) ||
                (t->underflow_risk && tile_tiny_inputs(x + i * row_stride, 1, n_pos, s))) {
                for (k = 0; k < n_pos; k++)
                    if (tile_pixel_bad(x + k, row_stride, pool + k, stride, t, s)) return 1;
                break;
            }
    for (i = 0; i < C; i++)
        tile_normalize(x + i * row_stride, pool + i * stride, out + i * out_stride, n_pos, s);
    return 0;
}

#if CGDN_DTYPE == 64
static void tile_gemm_plain(const void *a, ptrdiff_t a_rs, const void *b, ptrdiff_t b_rs,
                            void *c, ptrdiff_t c_rs, ptrdiff_t depth, ptrdiff_t n_rows,
                            ptrdiff_t n_cols) {
    gemm_plain((const real *)a, a_rs, (const real *)b, b_rs, (real *)c, c_rs, depth, n_rows,
               n_cols);
}
#endif
