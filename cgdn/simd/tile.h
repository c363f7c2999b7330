/* Kernel family: one tile, everything that runs inside it (variant.c includes it after
 * the other families, for one dtype). The core (cgdn/_core.pyx) picks the tiles and
 * runs them on its threads; each tile comes here once, through the variant's table.
 *
 * A tile is processed while it is in cache: the pool input f(x) goes to scratch, is
 * mixed across channels (gemm.h) into beta + pool, and the output is written from it;
 * or, where the registers allow, in one pass (fused.h), bit-identical. `out` may be `x`:
 * every element of x is read before the element of out at the same place is written.
 *
 * A pixel needs the careful path when beta + pool is out of range (zero, subnormal,
 * infinite or NaN) although all its inputs are finite (x = 1e30 in float32 squares to
 * inf; inf * 0 in the mix gives NaN). With a NaN or Inf input a pixel has no finite
 * answer, and its NaN stays confined to it. A tile holding such a pixel is reported and
 * left unwritten (so even in place its input is intact); the core's rescue runs the tile
 * again with `check` off, into a temporary, and finishes the pixels reported here. */

CGDN_INLINE real tile_rectified(real v, int rectify) {
    return rectify && v < 0 ? (real)0 : v;   /* NaN stays NaN, as TensorFlow's relu */
}

/* beta + pool out of range: the fast path may have lost the answer */
CGDN_INLINE int tile_out_of_range(real n) {
    return !(n >= REAL_MIN && n <= REAL_MAX);
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

static int tile_pixel_bad(const void *xv, ptrdiff_t x_stride, const void *nv,
                          ptrdiff_t n_stride, ptrdiff_t C) {
    const real *x = (const real *)xv, *n = (const real *)nv;
    ptrdiff_t i;
    int pool_bad = 0;
    for (i = 0; i < C; i++) pool_bad |= tile_out_of_range(n[i * n_stride]);
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

static void tile_plan(cgdn_tile *t) {
    t->fused = fused_rows_supported(t->n_ch);
    t->fused_wide = !t->fused && fused_wide_supported(t->n_ch);
    t->fused_planes = fused_planes_supported(t->n_ch);
    t->slab_norm = mix_slab_norm_supported(t->n_ch);
}

static int tile_last(const void *xv, void *outv, const cgdn_tile *t, void *fv, void *poolv,
                     ptrdiff_t n_rows, const cgdn_settings *s, int check) {
    const real *x = (const real *)xv, *beta = (const real *)t->beta;
    const real *gamma = (const real *)t->gamma, *mixer = (const real *)t->mixer;
    real *out = (real *)outv, *f = (real *)fv, *pool = (real *)poolv;
    const ptrdiff_t C = t->n_ch;
    ptrdiff_t r;
    if (check && (t->fused || t->fused_wide) && s->fast_mode >= 0 &&
        s->pool_mode != CGDN_POOL_POW) {
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
    tile_pool_input(x, f, n_rows * C, s);
    /* the mix checks the range of what it computes on the fly; only a doubt costs a pass */
    if (!mix_rows(f, mixer, gamma, beta, pool, n_rows, C) && check &&
        any_out_of_range(pool, n_rows * C))
        for (r = 0; r < n_rows; r++)
            if (tile_pixel_bad(x + r * C, 1, pool + r * C, 1, C)) return 1;
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
    ptrdiff_t i, k;
    if (check && t->fused_planes && s->fast_mode >= 0 && s->pool_mode != CGDN_POOL_POW) {
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
    if (check && t->slab_norm && s->fast_mode >= 0) {
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
    if (!mix_slab(f, mixer, beta, pool, n_pos, C) && check)
        for (i = 0; i < C; i++)
            if (any_out_of_range(pool + i * stride, n_pos)) {
                for (k = 0; k < n_pos; k++)
                    if (tile_pixel_bad(x + k, row_stride, pool + k, stride, C)) return 1;
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
