/* Vector primitives, aarch64 NEON (Advanced SIMD, always present on aarch64): 32
 * registers of 4 float / 2 double lanes. The same names as every primitive header
 * (see vec.h). */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#define CGDN_ISA_NAME "neon"
#define CGDN_NREG 32

/* ---- float32 ---- */
typedef float32x4_t cgdn_vf32;
typedef uint8x16_t cgdn_pf32;              /* byte indices for a table lookup */
#define CGDN_F32_LANES 4
#define CGDN_F32_EST_STEPS 2               /* frsqrte/frecpe: 8 bits, two Newton steps */
#define CGDN_F32_HAS_PERMUTE 1
#define CGDN_F32_HAS_TRANSPOSE 0
#define CGDN_F32_HAS_QUADS 0

static inline cgdn_vf32 cgdn_f32_load(const float *p) { return vld1q_f32(p); }
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { vst1q_f32(p, v); }
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    float b[4] = {fill, fill, fill, fill};
    memcpy(b, p, (size_t)n * sizeof(float));
    return vld1q_f32(b);
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    float b[4];
    vst1q_f32(b, v);
    memcpy(p, b, (size_t)n * sizeof(float));
}
static inline cgdn_vf32 cgdn_f32_set1(float a) { return vdupq_n_f32(a); }
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return vfmaq_f32(c, a, b);
}
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) {
    return vfmsq_f32(c, a, b);
}
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return vmulq_f32(a, b); }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return vaddq_f32(a, b); }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return vdivq_f32(a, b); }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) { return vsqrtq_f32(a); }
/* v < 0 becomes +0; NaN and -0 are kept */
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) {
    return vbslq_f32(vcltq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), v);
}
/* |v|: the sign bit cleared (-0 -> +0; NaN stays NaN) */
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) { return vabsq_f32(v); }
static inline cgdn_vf32 cgdn_f32_rsqrt_est(cgdn_vf32 a) { return vrsqrteq_f32(a); }
static inline cgdn_vf32 cgdn_f32_rcp_est(cgdn_vf32 a) { return vrecpeq_f32(a); }
static inline cgdn_pf32 cgdn_f32_perm_make(const int *lane) {
    uint8_t b[16];
    int k, q;
    for (k = 0; k < 4; k++)
        for (q = 0; q < 4; q++) b[4 * k + q] = (uint8_t)(4 * lane[k] + q);
    return vld1q_u8(b);
}
static inline cgdn_vf32 cgdn_f32_permute(cgdn_vf32 v, cgdn_pf32 idx) {
    return vreinterpretq_f32_u8(vqtbl1q_u8(vreinterpretq_u8_f32(v), idx));
}

/* Range check over many vectors (see vec_avx512.h): the unsigned maximum of
 * (bits - MIN) over the lanes folded in. */
typedef uint32x4_t cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return vdupq_n_u32(0); }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    return vmaxq_u32(s, vsubq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(CGDN_F32_POOL_MIN_BITS)));
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) {
    return vmaxvq_u32(s) <= CGDN_F32_POOL_MAX_BITS - CGDN_F32_POOL_MIN_BITS;
}

/* ---- float64 ---- */
typedef float64x2_t cgdn_vf64;
typedef uint8x16_t cgdn_pf64;
#define CGDN_F64_LANES 2
#define CGDN_F64_EST_STEPS 0               /* float64: exact sqrt and division */
#define CGDN_F64_HAS_PERMUTE 1
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) { return vld1q_f64(p); }
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { vst1q_f64(p, v); }
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    double b[2] = {fill, fill};
    memcpy(b, p, (size_t)n * sizeof(double));
    return vld1q_f64(b);
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    double b[2];
    vst1q_f64(b, v);
    memcpy(p, b, (size_t)n * sizeof(double));
}
static inline cgdn_vf64 cgdn_f64_set1(double a) { return vdupq_n_f64(a); }
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return vfmaq_f64(c, a, b);
}
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) {
    return vfmsq_f64(c, a, b);
}
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return vmulq_f64(a, b); }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return vaddq_f64(a, b); }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return vdivq_f64(a, b); }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) { return vsqrtq_f64(a); }
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) {
    return vbslq_f64(vcltq_f64(v, vdupq_n_f64(0.0)), vdupq_n_f64(0.0), v);
}
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) { return vabsq_f64(v); }
static inline cgdn_pf64 cgdn_f64_perm_make(const int *lane) {
    uint8_t b[16];
    int k, q;
    for (k = 0; k < 2; k++)
        for (q = 0; q < 8; q++) b[8 * k + q] = (uint8_t)(8 * lane[k] + q);
    return vld1q_u8(b);
}
static inline cgdn_vf64 cgdn_f64_permute(cgdn_vf64 v, cgdn_pf64 idx) {
    return vreinterpretq_f64_u8(vqtbl1q_u8(vreinterpretq_u8_f64(v), idx));
}
/* NEON has no 64-bit maximum: the state is the AND of ordered comparisons (NaN fails). */
typedef uint64x2_t cgdn_rf64;
static inline cgdn_rf64 cgdn_f64_range_init(void) { return vdupq_n_u64(~(uint64_t)0); }
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    return vandq_u64(s, vandq_u64(vcgeq_f64(v, vdupq_n_f64(CGDN_F64_POOL_MIN)),
                                  vcleq_f64(v, vdupq_n_f64(CGDN_F64_POOL_MAX))));
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) {
    return (vgetq_lane_u64(s, 0) & vgetq_lane_u64(s, 1)) != 0;
}
