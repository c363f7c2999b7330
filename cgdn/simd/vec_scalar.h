/* Vector primitives for CPUs without a supported SIMD unit: one lane, plain C. The
 * same names as every primitive header (see vec.h); the kernels then reduce to scalar
 * loops that the compiler may still vectorize on its own. */
#include <math.h>

#define CGDN_ISA_NAME "baseline"
#define CGDN_NREG 16

/* ---- float32 ---- */
typedef float cgdn_vf32;
#define CGDN_F32_LANES 1
#define CGDN_F32_EST_STEPS 0
#define CGDN_F32_HAS_PERMUTE 0
#define CGDN_F32_HAS_TRANSPOSE 0
#define CGDN_F32_HAS_QUADS 0

static inline cgdn_vf32 cgdn_f32_load(const float *p) { return *p; }
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { *p = v; }
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    return n > 0 ? *p : fill;
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    if (n > 0) *p = v;
}
static inline cgdn_vf32 cgdn_f32_set1(float a) { return a; }
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) { return a * b + c; }
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) { return c - a * b; }
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return a * b; }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return a + b; }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return a / b; }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) { return sqrtf(a); }
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) { return v < 0 ? 0.0f : v; }
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) { return fabsf(v); }

/* range check over many values: whether all lie in the pool range (NaN does not) */
typedef int cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return 1; }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    return s & (v >= CGDN_F32_POOL_MIN && v <= CGDN_F32_POOL_MAX);
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) { return s; }

/* ---- float64 ---- */
typedef double cgdn_vf64;
#define CGDN_F64_LANES 1
#define CGDN_F64_EST_STEPS 0
#define CGDN_F64_HAS_PERMUTE 0
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) { return *p; }
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { *p = v; }
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    return n > 0 ? *p : fill;
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    if (n > 0) *p = v;
}
static inline cgdn_vf64 cgdn_f64_set1(double a) { return a; }
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) { return a * b + c; }
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) { return c - a * b; }
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return a * b; }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return a + b; }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return a / b; }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) { return sqrt(a); }
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) { return v < 0 ? 0.0 : v; }
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) { return fabs(v); }
typedef int cgdn_rf64;
static inline cgdn_rf64 cgdn_f64_range_init(void) { return 1; }
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    return s & (v >= CGDN_F64_POOL_MIN && v <= CGDN_F64_POOL_MAX);
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) { return s; }
