/* Vector primitives, AVX-512 (F, VL, BW, DQ): 32 registers of 16 float / 8 double lanes.
 *
 * Every primitive header defines the same names (see vec.h); kernels use nothing else.
 * Tail loads fill the lanes past `n` with `fill`; tail stores write only `n` lanes. */
#include <immintrin.h>

#define CGDN_ISA_NAME "avx512"
#define CGDN_NREG 32

/* ---- float32 ---- */
typedef __m512 cgdn_vf32;
typedef __m512i cgdn_pf32;                 /* lane indices for cgdn_f32_permute */
#define CGDN_F32_LANES 16
#define CGDN_F32_EST_STEPS 1               /* rsqrt14/rcp14: 14 bits, one Newton step */
#define CGDN_F32_HAS_PERMUTE 1
#define CGDN_F32_HAS_TRANSPOSE 0
#define CGDN_F32_HAS_QUADS 0

static inline cgdn_vf32 cgdn_f32_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { _mm512_storeu_ps(p, v); }
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    __mmask16 m = (__mmask16)((1u << n) - 1u);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, p);
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
static inline cgdn_vf32 cgdn_f32_set1(float a) { return _mm512_set1_ps(a); }
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm512_fmadd_ps(a, b, c);
}
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm512_fnmadd_ps(a, b, c);
}
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return _mm512_mul_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return _mm512_add_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return _mm512_div_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) { return _mm512_sqrt_ps(a); }
/* max(0, v) where v < 0 is replaced by +0; NaN and -0 are kept (x86 max returns its
 * second operand when either is NaN or both are zero) */
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) {
    return _mm512_max_ps(_mm512_setzero_ps(), v);
}
/* |v|: the sign bit cleared (-0 -> +0; NaN stays NaN) */
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) { return _mm512_abs_ps(v); }
static inline cgdn_vf32 cgdn_f32_rsqrt_est(cgdn_vf32 a) { return _mm512_rsqrt14_ps(a); }
static inline cgdn_vf32 cgdn_f32_rcp_est(cgdn_vf32 a) { return _mm512_rcp14_ps(a); }
static inline cgdn_pf32 cgdn_f32_perm_make(const int *lane) {
    return _mm512_loadu_si512((const void *)lane);
}
static inline cgdn_vf32 cgdn_f32_permute(cgdn_vf32 v, cgdn_pf32 idx) {
    return _mm512_permutexvar_ps(idx, v);
}

/* Range check over many vectors: whether every lane folded in lies in the pool range
 * (vec.h). On the bit patterns it is one interval [MIN, MAX]: the state keeps
 * the unsigned maximum of (bits - MIN), which wraps for 0, subnormals and negatives and
 * exceeds MAX - MIN for inf and NaN. Two one-cycle integer operations per vector and no
 * dependency through mask registers. */
typedef __m512i cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return _mm512_setzero_si512(); }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    return _mm512_max_epu32(s, _mm512_sub_epi32(_mm512_castps_si512(v),
                                                _mm512_set1_epi32(CGDN_F32_POOL_MIN_BITS)));
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) {
    const __m512i limit = _mm512_set1_epi32(CGDN_F32_POOL_MAX_BITS - CGDN_F32_POOL_MIN_BITS);
    return _mm512_cmpgt_epu32_mask(s, limit) == 0;
}

/* ---- float64 ---- */
typedef __m512d cgdn_vf64;
typedef __m512i cgdn_pf64;
#define CGDN_F64_LANES 8
#define CGDN_F64_EST_STEPS 0               /* float64: exact sqrt and division, no estimates */
#define CGDN_F64_HAS_PERMUTE 1
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { _mm512_storeu_pd(p, v); }
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    __mmask8 m = (__mmask8)((1u << n) - 1u);
    return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), m, p);
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1u), v);
}
static inline cgdn_vf64 cgdn_f64_set1(double a) { return _mm512_set1_pd(a); }
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm512_fmadd_pd(a, b, c);
}
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm512_fnmadd_pd(a, b, c);
}
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return _mm512_mul_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return _mm512_add_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return _mm512_div_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) { return _mm512_sqrt_pd(a); }
/* max(0, v) where v < 0 is replaced by +0; NaN and -0 are kept (x86 max returns its
 * second operand when either is NaN or both are zero) */
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) {
    return _mm512_max_pd(_mm512_setzero_pd(), v);
}
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) { return _mm512_abs_pd(v); }
static inline cgdn_pf64 cgdn_f64_perm_make(const int *lane) {
    return _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)lane));
}
static inline cgdn_vf64 cgdn_f64_permute(cgdn_vf64 v, cgdn_pf64 idx) {
    return _mm512_permutexvar_pd(idx, v);
}
typedef __m512i cgdn_rf64;                 /* as cgdn_rf32, on 64-bit patterns */
static inline cgdn_rf64 cgdn_f64_range_init(void) { return _mm512_setzero_si512(); }
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    const __m512i min = _mm512_set1_epi64((long long)CGDN_F64_POOL_MIN_BITS);
    return _mm512_max_epu64(s, _mm512_sub_epi64(_mm512_castpd_si512(v), min));
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) {
    return _mm512_cmpgt_epu64_mask(
               s, _mm512_set1_epi64((long long)(CGDN_F64_POOL_MAX_BITS
                                                - CGDN_F64_POOL_MIN_BITS))) == 0;
}
