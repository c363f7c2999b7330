/* Vector primitives, SSE2 (the x86-64 baseline): 16 registers of 4 float / 2 double
 * lanes, no FMA (multiply then add), no variable permute. The same names as every
 * primitive header (see vec.h). */
#include <emmintrin.h>
#include <string.h>

#define CGDN_ISA_NAME "baseline"
#define CGDN_NREG 16

/* ---- float32 ---- */
typedef __m128 cgdn_vf32;
#define CGDN_F32_LANES 4
#define CGDN_F32_EST_STEPS 1               /* rsqrtps/rcpps: 12 bits, one Newton step */
#define CGDN_F32_HAS_PERMUTE 0
#define CGDN_F32_HAS_TRANSPOSE 0
#define CGDN_F32_HAS_QUADS 0

static inline cgdn_vf32 cgdn_f32_load(const float *p) { return _mm_loadu_ps(p); }
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { _mm_storeu_ps(p, v); }
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    float b[4] = {fill, fill, fill, fill};
    memcpy(b, p, (size_t)n * sizeof(float));
    return _mm_loadu_ps(b);
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    float b[4];
    _mm_storeu_ps(b, v);
    memcpy(p, b, (size_t)n * sizeof(float));
}
static inline cgdn_vf32 cgdn_f32_set1(float a) { return _mm_set1_ps(a); }
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm_add_ps(_mm_mul_ps(a, b), c);
}
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return _mm_sub_ps(c, _mm_mul_ps(a, b));
}
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return _mm_mul_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return _mm_add_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return _mm_div_ps(a, b); }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) { return _mm_sqrt_ps(a); }
/* v < 0 becomes +0; NaN and -0 are kept (maxps returns its second operand then) */
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) { return _mm_max_ps(_mm_setzero_ps(), v); }
/* |v|: the sign bit cleared (-0 -> +0; NaN stays NaN) */
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), v); }
static inline cgdn_vf32 cgdn_f32_rsqrt_est(cgdn_vf32 a) { return _mm_rsqrt_ps(a); }
static inline cgdn_vf32 cgdn_f32_rcp_est(cgdn_vf32 a) { return _mm_rcp_ps(a); }

/* Range check over many vectors: whether every lane folded in lies in the pool
 * range (NaN does not: the comparisons are ordered). SSE2 has no unsigned 32-bit
 * maximum, so the state is the AND of the comparisons' masks. */
typedef __m128 cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return _mm_castsi128_ps(_mm_set1_epi32(-1)); }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    return _mm_and_ps(s, _mm_and_ps(_mm_cmpge_ps(v, _mm_set1_ps(CGDN_F32_POOL_MIN)),
                                    _mm_cmple_ps(v, _mm_set1_ps(CGDN_F32_POOL_MAX))));
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) { return _mm_movemask_ps(s) == 0xF; }

/* ---- float64 ---- */
typedef __m128d cgdn_vf64;
#define CGDN_F64_LANES 2
#define CGDN_F64_EST_STEPS 0               /* float64: exact sqrt and division */
#define CGDN_F64_HAS_PERMUTE 0
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) { return _mm_loadu_pd(p); }
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { _mm_storeu_pd(p, v); }
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    double b[2] = {fill, fill};
    memcpy(b, p, (size_t)n * sizeof(double));
    return _mm_loadu_pd(b);
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    double b[2];
    _mm_storeu_pd(b, v);
    memcpy(p, b, (size_t)n * sizeof(double));
}
static inline cgdn_vf64 cgdn_f64_set1(double a) { return _mm_set1_pd(a); }
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm_add_pd(_mm_mul_pd(a, b), c);
}
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return _mm_sub_pd(c, _mm_mul_pd(a, b));
}
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return _mm_mul_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return _mm_add_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return _mm_div_pd(a, b); }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) { return _mm_sqrt_pd(a); }
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) { return _mm_max_pd(_mm_setzero_pd(), v); }
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) { return _mm_andnot_pd(_mm_set1_pd(-0.0), v); }
typedef __m128d cgdn_rf64;                 /* as cgdn_rf32 */
static inline cgdn_rf64 cgdn_f64_range_init(void) { return _mm_castsi128_pd(_mm_set1_epi32(-1)); }
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    return _mm_and_pd(s, _mm_and_pd(_mm_cmpge_pd(v, _mm_set1_pd(CGDN_F64_POOL_MIN)),
                                    _mm_cmple_pd(v, _mm_set1_pd(CGDN_F64_POOL_MAX))));
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) { return _mm_movemask_pd(s) == 0x3; }
