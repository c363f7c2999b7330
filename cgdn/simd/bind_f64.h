/* Binds the generic names the kernel families are written against to float64:
 * the element and vector types and the primitives of vec.h (variant.c includes it
 * when compiled with CGDN_DTYPE=64). */
#define real double
#define real_bits uint64_t
#define vec cgdn_vf64
#define LANES CGDN_F64_LANES
#define EST_STEPS CGDN_F64_EST_STEPS
#define HAS_PERMUTE CGDN_F64_HAS_PERMUTE
#if CGDN_F64_HAS_PERMUTE
#define vperm cgdn_pf64
#define v_perm_make cgdn_f64_perm_make
#define v_permute cgdn_f64_permute
#endif
#define HAS_TRANSPOSE CGDN_F64_HAS_TRANSPOSE
#define HAS_QUADS CGDN_F64_HAS_QUADS
#if CGDN_F64_HAS_QUADS
#define v_quad_splat cgdn_f64_quad_splat
#endif
#if CGDN_F64_HAS_TRANSPOSE
#define v_transpose_load cgdn_f64_transpose_load
#define v_transpose_store cgdn_f64_transpose_store
#endif
#define v_load cgdn_f64_load
#define v_store cgdn_f64_store
#define v_load_tail cgdn_f64_load_tail
#define v_store_tail cgdn_f64_store_tail
#define v_set1 cgdn_f64_set1
#define v_fma cgdn_f64_fma
#define v_fnma cgdn_f64_fnma
#define v_mul cgdn_f64_mul
#define v_add cgdn_f64_add
#define v_div cgdn_f64_div
#define v_sqrt cgdn_f64_sqrt
#define v_rectify cgdn_f64_rectify
#define v_abs cgdn_f64_abs
#define v_rsqrt_est cgdn_f64_rsqrt_est
#define v_rcp_est cgdn_f64_rcp_est
#define vrange cgdn_rf64
#define v_range_init cgdn_f64_range_init
#define v_range_fold cgdn_f64_range_fold
#define v_range_ok cgdn_f64_range_ok
/* the pool range (vec.h), as values and bit patterns; the normal range */
#define REAL_POOL_MIN CGDN_F64_POOL_MIN
#define REAL_POOL_MAX CGDN_F64_POOL_MAX
#define REAL_POOL_BITS_MIN CGDN_F64_POOL_MIN_BITS
#define REAL_POOL_BITS_MAX CGDN_F64_POOL_MAX_BITS
#define REAL_MIN DBL_MIN
#define REAL_MAX DBL_MAX
/* the scalar functions of this dtype */
#define real_fabs fabs
#define real_pow pow
