/* Vector primitives for checking, not for speed: AVX-512's shape (32 registers of 16
 * float / 8 double lanes, reciprocal estimates refined by one Newton step in float32,
 * lane permutes) in portable C with GCC/Clang vector types, so that the kernels'
 * blockings for that shape (rows per block, panels, tails, one-pass paths) run and are
 * tested on any CPU. Built only when asked (CGDN_WIDE_EMULATION=1 for setup.py; see
 * tools/check_wide.sh), as the variant "wide"; never picked by default.
 *
 * The estimates are the exact reciprocal (square root) with the significand cut to 14
 * bits, as coarse as AVX-512's rsqrt14/rcp14, so the Newton step is exercised. The
 * multiply-add is a multiply then an add (two roundings) on every path alike. */
#include <math.h>

#define CGDN_ISA_NAME "wide"
#define CGDN_NREG 32

#define CGDN_EMU_VEC_BYTES 64
typedef int32_t cgdn_wide_i32 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));
typedef uint32_t cgdn_wide_u32 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));
typedef int64_t cgdn_wide_i64 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));
typedef uint64_t cgdn_wide_u64 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));

/* ---- float32 ---- */
typedef float cgdn_vf32 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));
typedef cgdn_wide_i32 cgdn_pf32;
#define CGDN_F32_LANES 16
#define CGDN_F32_EST_STEPS 1
#define CGDN_F32_HAS_PERMUTE 1
#define CGDN_F32_HAS_TRANSPOSE 0
#define CGDN_F32_HAS_QUADS 0

static inline cgdn_vf32 cgdn_f32_load(const float *p) {
    cgdn_vf32 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void cgdn_f32_store(float *p, cgdn_vf32 v) { memcpy(p, &v, sizeof v); }
static inline cgdn_vf32 cgdn_f32_set1(float a) {
    cgdn_vf32 v;
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) v[i] = a;
    return v;
}
static inline cgdn_vf32 cgdn_f32_load_tail(const float *p, ptrdiff_t n, float fill) {
    cgdn_vf32 v = cgdn_f32_set1(fill);
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}
static inline void cgdn_f32_store_tail(float *p, ptrdiff_t n, cgdn_vf32 v) {
    memcpy(p, &v, (size_t)n * sizeof(float));
}
static inline cgdn_vf32 cgdn_f32_fma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) { return a * b + c; }
static inline cgdn_vf32 cgdn_f32_fnma(cgdn_vf32 a, cgdn_vf32 b, cgdn_vf32 c) { return c - a * b; }
static inline cgdn_vf32 cgdn_f32_mul(cgdn_vf32 a, cgdn_vf32 b) { return a * b; }
static inline cgdn_vf32 cgdn_f32_add(cgdn_vf32 a, cgdn_vf32 b) { return a + b; }
static inline cgdn_vf32 cgdn_f32_div(cgdn_vf32 a, cgdn_vf32 b) { return a / b; }
static inline cgdn_vf32 cgdn_f32_sqrt(cgdn_vf32 a) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) a[i] = sqrtf(a[i]);
    return a;
}
/* v < 0 -> +0; NaN and -0 kept (as the x86 headers) */
static inline cgdn_vf32 cgdn_f32_rectify(cgdn_vf32 v) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++)
        if (v[i] < 0) v[i] = 0.0f;
    return v;
}
static inline cgdn_vf32 cgdn_f32_abs(cgdn_vf32 v) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) v[i] = fabsf(v[i]);
    return v;
}
/* the significand of each lane cut to 14 bits (an estimate's precision) */
static inline cgdn_vf32 cgdn_wide_coarse_f32(cgdn_vf32 v) {
    cgdn_wide_u32 bits;
    memcpy(&bits, &v, sizeof v);
    bits &= ~(cgdn_wide_u32){0} << 9;
    memcpy(&v, &bits, sizeof v);
    return v;
}
static inline cgdn_vf32 cgdn_f32_rsqrt_est(cgdn_vf32 a) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) a[i] = 1.0f / sqrtf(a[i]);
    return cgdn_wide_coarse_f32(a);
}
static inline cgdn_vf32 cgdn_f32_rcp_est(cgdn_vf32 a) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) a[i] = 1.0f / a[i];
    return cgdn_wide_coarse_f32(a);
}
static inline cgdn_pf32 cgdn_f32_perm_make(const int *lane) {
    cgdn_pf32 idx;
    memcpy(&idx, lane, sizeof idx);
    return idx;
}
static inline cgdn_vf32 cgdn_f32_permute(cgdn_vf32 v, cgdn_pf32 idx) {
    cgdn_vf32 r;
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++) r[i] = v[idx[i] & (CGDN_F32_LANES - 1)];
    return r;
}
/* the unsigned maximum of (bits - MIN), as the x86 headers */
typedef cgdn_wide_u32 cgdn_rf32;
static inline cgdn_rf32 cgdn_f32_range_init(void) { return (cgdn_rf32){0}; }
static inline cgdn_rf32 cgdn_f32_range_fold(cgdn_rf32 s, cgdn_vf32 v) {
    cgdn_wide_u32 bits;
    int i;
    memcpy(&bits, &v, sizeof v);
    bits -= CGDN_F32_POOL_MIN_BITS;
    for (i = 0; i < CGDN_F32_LANES; i++)
        if (bits[i] > s[i]) s[i] = bits[i];
    return s;
}
static inline int cgdn_f32_range_ok(cgdn_rf32 s) {
    int i;
    for (i = 0; i < CGDN_F32_LANES; i++)
        if (s[i] > CGDN_F32_POOL_MAX_BITS - CGDN_F32_POOL_MIN_BITS) return 0;
    return 1;
}

/* ---- float64 ---- */
typedef double cgdn_vf64 __attribute__((vector_size(CGDN_EMU_VEC_BYTES)));
typedef cgdn_wide_i64 cgdn_pf64;
#define CGDN_F64_LANES 8
#define CGDN_F64_EST_STEPS 0
#define CGDN_F64_HAS_PERMUTE 1
#define CGDN_F64_HAS_TRANSPOSE 0
#define CGDN_F64_HAS_QUADS 0

static inline cgdn_vf64 cgdn_f64_load(const double *p) {
    cgdn_vf64 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void cgdn_f64_store(double *p, cgdn_vf64 v) { memcpy(p, &v, sizeof v); }
static inline cgdn_vf64 cgdn_f64_set1(double a) {
    cgdn_vf64 v;
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++) v[i] = a;
    return v;
}
static inline cgdn_vf64 cgdn_f64_load_tail(const double *p, ptrdiff_t n, double fill) {
    cgdn_vf64 v = cgdn_f64_set1(fill);
    memcpy(&v, p, (size_t)n * sizeof(double));
    return v;
}
static inline void cgdn_f64_store_tail(double *p, ptrdiff_t n, cgdn_vf64 v) {
    memcpy(p, &v, (size_t)n * sizeof(double));
}
static inline cgdn_vf64 cgdn_f64_fma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) { return a * b + c; }
static inline cgdn_vf64 cgdn_f64_fnma(cgdn_vf64 a, cgdn_vf64 b, cgdn_vf64 c) { return c - a * b; }
static inline cgdn_vf64 cgdn_f64_mul(cgdn_vf64 a, cgdn_vf64 b) { return a * b; }
static inline cgdn_vf64 cgdn_f64_add(cgdn_vf64 a, cgdn_vf64 b) { return a + b; }
static inline cgdn_vf64 cgdn_f64_div(cgdn_vf64 a, cgdn_vf64 b) { return a / b; }
static inline cgdn_vf64 cgdn_f64_sqrt(cgdn_vf64 a) {
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++) a[i] = sqrt(a[i]);
    return a;
}
static inline cgdn_vf64 cgdn_f64_rectify(cgdn_vf64 v) {
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++)
        if (v[i] < 0) v[i] = 0.0;
    return v;
}
static inline cgdn_vf64 cgdn_f64_abs(cgdn_vf64 v) {
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++) v[i] = fabs(v[i]);
    return v;
}
static inline cgdn_pf64 cgdn_f64_perm_make(const int *lane) {
    cgdn_pf64 idx;
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++) idx[i] = lane[i];
    return idx;
}
static inline cgdn_vf64 cgdn_f64_permute(cgdn_vf64 v, cgdn_pf64 idx) {
    cgdn_vf64 r;
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++) r[i] = v[idx[i] & (CGDN_F64_LANES - 1)];
    return r;
}
typedef cgdn_wide_u64 cgdn_rf64;
static inline cgdn_rf64 cgdn_f64_range_init(void) { return (cgdn_rf64){0}; }
static inline cgdn_rf64 cgdn_f64_range_fold(cgdn_rf64 s, cgdn_vf64 v) {
    cgdn_wide_u64 bits;
    int i;
    memcpy(&bits, &v, sizeof v);
    bits -= CGDN_F64_POOL_MIN_BITS;
    for (i = 0; i < CGDN_F64_LANES; i++)
        if (bits[i] > s[i]) s[i] = bits[i];
    return s;
}
static inline int cgdn_f64_range_ok(cgdn_rf64 s) {
    int i;
    for (i = 0; i < CGDN_F64_LANES; i++)
        if (s[i] > CGDN_F64_POOL_MAX_BITS - CGDN_F64_POOL_MIN_BITS) return 0;
    return 1;
}
