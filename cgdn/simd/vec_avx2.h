/* Vector primitives, AVX2 + FMA: 16 registers of 8 float / 4 double lanes.
 * The same names as every primitive header (see vec.h). */
#include <immintrin.h>

#define CGDN_ISA_NAME "avx2"
#define CGDN_NREG 16

/* Mask of the first n of 8 32-bit lanes (n in 0..8). */
static inline __m256i cgdn_avx2_mask32(ptrdiff_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* Mask of the first n of 4 64-bit lanes (n in 0..4). */
static inline __m256i cgdn_avx2_mask64(ptrdiff_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* ---- float32 ---- */
typedef __m256 cgdn_vf32;
typedef __m256i cgdn_pf32;
#define CGDN_F32_LANES 8
#define CGDN_F32_EST_STEPS 1               /* rsqrt/rcp: 12 bits, one Newton step */
#define CGDN_F32_HAS_PERMUTE 1
#define CGDN_F32_HAS_TRANSPOSE 1
#define CGDN_F32_HAS_QUADS 1                /* in-quad splats by immediate shuffles */

static inline cgdn_vf32 cgdn_f32_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { _mm256_storeu_ps(p, v); }
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    __m256i m = cgdn_avx2_mask32(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    _mm256_maskstore_ps(p, cgdn_avx2_mask32(n), v);
}
static inline cgdn_vf32 cgdn_f32_set1(float a) { return _mm256_set1_ps(a); }
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm256_fmadd_ps(a, b, c);
}
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm256_fnmadd_ps(a, b, c);
}
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return _mm256_mul_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return _mm256_add_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return _mm256_div_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) { return _mm256_sqrt_ps(a); }
/* max(0, v) where v < 0 is replaced by +0; NaN and -0 are kept (x86 max returns its
 * second operand when either is NaN or both are zero) */
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) {
    return _mm256_max_ps(_mm256_setzero_ps(), v);
}
/* |v|: the sign bit cleared (-0 -> +0; NaN stays NaN) */
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}
static inline cgdn_vf32 cgdn_f32_rsqrt_est(cgdn_vf32 a) { return _mm256_rsqrt_ps(a); }
static inline cgdn_vf32 cgdn_f32_rcp_est(cgdn_vf32 a) { return _mm256_rcp_ps(a); }
static inline cgdn_pf32 cgdn_f32_perm_make(const int *lane) {
    return _mm256_loadu_si256((const __m256i *)lane);
}
static inline cgdn_vf32 cgdn_f32_permute(cgdn_vf32 v, cgdn_pf32 idx) {
    return _mm256_permutevar8x32_ps(v, idx);
}

/* Quads (groups of 4 lanes: here the two 128-bit halves). quad_splat: in each group of
 * `group` lanes (2 or 4, groups tiling the quads), lane j of the group copied to all its
 * lanes: one shuffle by an immediate, which an AMD EPYC (AVX2, 1 thread) ran at the rate
 * of an FMA, where the variable lane permute took 3.7 times as long. */
static inline cgdn_vf32 cgdn_f32_quad_splat(cgdn_vf32 v, int group, int j) {
    if (group == 2) return j == 0 ? _mm256_shuffle_ps(v, v, 0xA0) : _mm256_shuffle_ps(v, v, 0xF5);
    switch (j) {
    case 0: return _mm256_shuffle_ps(v, v, 0x00);
    case 1: return _mm256_shuffle_ps(v, v, 0x55);
    case 2: return _mm256_shuffle_ps(v, v, 0xAA);
    default: return _mm256_shuffle_ps(v, v, 0xFF);
    }
}

/* Mask of the first n of 4 32-bit lanes (n in 0..4). */
static inline __m128i cgdn_avx2_mask32x4(ptrdiff_t n) {
    return _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3));
}
/* 4 floats at p: the first n (n <= 0: none, the others zero), or all 4 if `whole`. */
static inline __m128 cgdn_avx2_load4(const float *p, ptrdiff_t n, int whole) {
    if (whole || n >= 4) return _mm_loadu_ps(p);
    if (n <= 0) return _mm_setzero_ps();
    return _mm_maskload_ps(p, cgdn_avx2_mask32x4(n));
}
static inline void cgdn_avx2_store4(float *p, ptrdiff_t n, int whole, __m128 v) {
    if (whole || n >= 4)
        _mm_storeu_ps(p, v);
    else if (n > 0)
        _mm_maskstore_ps(p, cgdn_avx2_mask32x4(n), v);
}
/* 8 rows of 3 elements, contiguous (p[0 .. 23]), to their 3 columns: the rows' thirds
 * loaded in 128-bit pieces, rows 0-3 to the low halves and 4-7 to the high, then 5
 * in-lane shuffles (8 rows of a general width take 16, and masked loads). */
static inline void cgdn_avx2_transpose3_load(const float *p, cgdn_vf32 *cols) {
    /* per half: a = [x0 y0 z0 x1], b = [y1 z1 x2 y2], c = [z2 x3 y3 z3] */
    const __m256 a = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(p + 12), 1);
    const __m256 b = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p + 4)), _mm_loadu_ps(p + 16), 1);
    const __m256 c = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p + 8)), _mm_loadu_ps(p + 20), 1);
    const __m256 xy = _mm256_shuffle_ps(b, c, _MM_SHUFFLE(2, 1, 3, 2));   /* x2 y2 x3 y3 */
    const __m256 yz = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 2, 1));   /* y0 z0 y1 z1 */
    cols[0] = _mm256_shuffle_ps(a, xy, _MM_SHUFFLE(2, 0, 3, 0));
    cols[1] = _mm256_shuffle_ps(yz, xy, _MM_SHUFFLE(3, 1, 2, 0));
    cols[2] = _mm256_shuffle_ps(yz, c, _MM_SHUFFLE(3, 0, 3, 1));
}
/* The inverse: 6 in-lane shuffles, then the pieces stored in place. */
static inline void cgdn_avx2_transpose3_store(const cgdn_vf32 *cols, float *p) {
    const __m256 t0 = _mm256_shuffle_ps(cols[0], cols[1], _MM_SHUFFLE(2, 0, 2, 0));  /* x0 x2 y0 y2 */
    const __m256 t1 = _mm256_shuffle_ps(cols[1], cols[2], _MM_SHUFFLE(3, 1, 3, 1));  /* y1 y3 z1 z3 */
    const __m256 t2 = _mm256_shuffle_ps(cols[2], cols[0], _MM_SHUFFLE(3, 1, 2, 0));  /* z0 z2 x1 x3 */
    const __m256 a = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 b = _mm256_shuffle_ps(t1, t0, _MM_SHUFFLE(3, 1, 2, 0));
    const __m256 c = _mm256_shuffle_ps(t2, t1, _MM_SHUFFLE(3, 1, 3, 1));
    _mm_storeu_ps(p, _mm256_castps256_ps128(a));
    _mm_storeu_ps(p + 4, _mm256_castps256_ps128(b));
    _mm_storeu_ps(p + 8, _mm256_castps256_ps128(c));
    _mm_storeu_ps(p + 12, _mm256_extractf128_ps(a, 1));
    _mm_storeu_ps(p + 16, _mm256_extractf128_ps(b, 1));
    _mm_storeu_ps(p + 20, _mm256_extractf128_ps(c, 1));
}
/* Columns of a block of 8 rows (row r at p + r * rs) by w columns (1 <= w <= 8):
 * cols[c] holds column c of the 8 rows for c < w. Columns up to `reach` (w <= reach <= 8)
 * may be read: a row's half (4 columns) that lies within them is read whole, else only
 * its columns below w, with a mask (the other lanes zero). The rows' halves go to the two
 * 128-bit halves of a register, so the transpose takes 16 in-lane shuffles, not 24. */
static inline void cgdn_f32_transpose_load(const float *p, ptrdiff_t rs, ptrdiff_t w,
                                           ptrdiff_t reach, cgdn_vf32 *cols) {
    __m256 r[8], t[4];
    int i, h;
    if (rs == 3 && w == 3) {   /* whole rows of 3: the 24 elements p[0 .. 23] */
        cgdn_avx2_transpose3_load(p, cols);
        return;
    }
    for (h = 0; h < 8; h += 4) {
        const int whole = w > h && reach >= h + 4;
        for (i = 0; i < 4; i++)   /* r[h + i]: columns h .. h + 3 of rows i and i + 4 */
            r[h + i] = _mm256_insertf128_ps(
                _mm256_castps128_ps256(cgdn_avx2_load4(p + i * rs + h, w - h, whole)),
                cgdn_avx2_load4(p + (i + 4) * rs + h, w - h, whole), 1);
    }
    for (h = 0; h < 8; h += 4) {
        t[0] = _mm256_unpacklo_ps(r[h], r[h + 1]);
        t[1] = _mm256_unpackhi_ps(r[h], r[h + 1]);
        t[2] = _mm256_unpacklo_ps(r[h + 2], r[h + 3]);
        t[3] = _mm256_unpackhi_ps(r[h + 2], r[h + 3]);
        cols[h] = _mm256_shuffle_ps(t[0], t[2], 0x44);
        cols[h + 1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
        cols[h + 2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
        cols[h + 3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
    }
}
/* The inverse: column c of cols to element c of each of the 8 rows at p + r * rs, for
 * c < w; a row's half within `reach` is stored whole (columns w .. reach - 1 then receive
 * cols[w ..], which the caller overwrites later), else with a mask. */
static inline void cgdn_f32_transpose_store(const cgdn_vf32 *cols, float *p, ptrdiff_t rs,
                                            ptrdiff_t w, ptrdiff_t reach) {
    __m256 t[4], u[4];
    int i, h;
    if (rs == 3 && w == 3) {
        cgdn_avx2_transpose3_store(cols, p);
        return;
    }
    for (h = 0; h < w; h += 4) {
        const int whole = reach >= h + 4;
        t[0] = _mm256_unpacklo_ps(cols[h], cols[h + 1]);
        t[1] = _mm256_unpackhi_ps(cols[h], cols[h + 1]);
        t[2] = _mm256_unpacklo_ps(cols[h + 2], cols[h + 3]);
        t[3] = _mm256_unpackhi_ps(cols[h + 2], cols[h + 3]);
        u[0] = _mm256_shuffle_ps(t[0], t[2], 0x44);   /* u[i]: columns h .. h + 3 of */
        u[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);   /* rows i and i + 4 */
        u[2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
        u[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
        for (i = 0; i < 4; i++) {
            cgdn_avx2_store4(p + i * rs + h, w - h, whole, _mm256_castps256_ps128(u[i]));
            cgdn_avx2_store4(p + (i + 4) * rs + h, w - h, whole, _mm256_extractf128_ps(u[i], 1));
        }
    }
}

/* Range check over many vectors (see vec_avx512.h): the unsigned maximum of
 * (bits - MIN) over the lanes folded in. */
typedef __m256i cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return _mm256_setzero_si256(); }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    return _mm256_max_epu32(s, _mm256_sub_epi32(_mm256_castps_si256(v),
                                                _mm256_set1_epi32(CGDN_F32_POOL_MIN_BITS)));
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) {
    const __m256i limit = _mm256_set1_epi32(CGDN_F32_POOL_MAX_BITS - CGDN_F32_POOL_MIN_BITS);
    return _mm256_movemask_epi8(_mm256_cmpeq_epi32(_mm256_max_epu32(s, limit), limit)) == -1;
}

/* ---- float64 ---- */
typedef __m256d cgdn_vf64;
typedef __m256i cgdn_pf64;
#define CGDN_F64_LANES 4
#define CGDN_F64_EST_STEPS 0
#define CGDN_F64_HAS_PERMUTE 1
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { _mm256_storeu_pd(p, v); }
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    __m256i m = cgdn_avx2_mask64(n);
    return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    _mm256_maskstore_pd(p, cgdn_avx2_mask64(n), v);
}
static inline cgdn_vf64 cgdn_f64_set1(double a) { return _mm256_set1_pd(a); }
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm256_fmadd_pd(a, b, c);
}
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm256_fnmadd_pd(a, b, c);
}
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return _mm256_mul_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return _mm256_add_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return _mm256_div_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) { return _mm256_sqrt_pd(a); }
/* max(0, v) where v < 0 is replaced by +0; NaN and -0 are kept (x86 max returns its
 * second operand when either is NaN or both are zero) */
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) {
    return _mm256_max_pd(_mm256_setzero_pd(), v);
}
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) {
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}
/* A double lane k is the float lanes 2k, 2k+1. */
static inline cgdn_pf64 cgdn_f64_perm_make(const int *lane) {
    return _mm256_setr_epi32(2 * lane[0], 2 * lane[0] + 1, 2 * lane[1], 2 * lane[1] + 1,
                             2 * lane[2], 2 * lane[2] + 1, 2 * lane[3], 2 * lane[3] + 1);
}
static inline cgdn_vf64 cgdn_f64_permute(cgdn_vf64 v, cgdn_pf64 idx) {
    return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), idx));
}
/* AVX2 has no unsigned 64-bit maximum: the state is the AND of ordered comparisons
 * (NaN fails them), all ones while every lane is in the pool range. */
typedef __m256d cgdn_rf64;
static inline cgdn_rf64 cgdn_f64_range_init(void) {
    return _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
}
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    const __m256d lo = _mm256_set1_pd(CGDN_F64_POOL_MIN), hi = _mm256_set1_pd(CGDN_F64_POOL_MAX);
    return _mm256_and_pd(s, _mm256_and_pd(_mm256_cmp_pd(v, lo, _CMP_GE_OQ),
                                          _mm256_cmp_pd(v, hi, _CMP_LE_OQ)));
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) { return _mm256_movemask_pd(s) == 0xF; }
