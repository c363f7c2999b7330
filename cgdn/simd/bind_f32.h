/* Binds the generic names the kernel families are written against to float32:
 * the element and vector types and the primitives of vec.h (variant.c includes it
 * when compiled with CGDN_DTYPE=32). */
#define real float
#define real_bits uint32_t
#define vec cgdn_vf32
#define LANES CGDN_F32_LANES
#define EST_STEPS CGDN_F32_EST_STEPS
#define HAS_PERMUTE CGDN_F32_HAS_PERMUTE
#if CGDN_F32_HAS_PERMUTE
#define vperm cgdn_pf32
#define v_perm_make cgdn_f32_perm_make
#define v_permute cgdn_f32_permute
#endif
#define HAS_TRANSPOSE CGDN_F32_HAS_TRANSPOSE
#define HAS_QUADS CGDN_F32_HAS_QUADS
#if CGDN_F32_HAS_QUADS
#define v_quad_splat cgdn_f32_quad_splat
#endif
#if CGDN_F32_HAS_TRANSPOSE
#define v_transpose_load cgdn_f32_transpose_load
#define v_transpose_store cgdn_f32_transpose_store
#endif
#define v_load cgdn_f32_load
#define v_store cgdn_f32_store
#define v_load_tail cgdn_f32_load_tail
#define v_store_tail cgdn_f32_store_tail
#define v_set1 cgdn_f32_set1
#define v_fma cgdn_f32_fma
#define v_fnma cgdn_f32_fnma
#define v_mul cgdn_f32_mul
#define v_add cgdn_f32_add
#define v_div cgdn_f32_div
#define v_sqrt cgdn_f32_sqrt
#define v_rectify cgdn_f32_rectify
#define v_abs cgdn_f32_abs
#define v_rsqrt_est cgdn_f32_rsqrt_est
#define v_rcp_est cgdn_f32_rcp_est
#define vrange cgdn_rf32
#define v_range_init cgdn_f32_range_init
#define v_range_fold cgdn_f32_range_fold
#define v_range_ok cgdn_f32_range_ok
/* the pool range (vec.h), as values and bit patterns; the normal range */
#define REAL_POOL_MIN CGDN_F32_POOL_MIN
#define REAL_POOL_MAX CGDN_F32_POOL_MAX
#define REAL_POOL_BITS_MIN CGDN_F32_POOL_MIN_BITS
#define REAL_POOL_BITS_MAX CGDN_F32_POOL_MAX_BITS
#define REAL_MIN FLT_MIN
#define REAL_MAX FLT_MAX
/* the scalar functions of this dtype */
#define real_fabs fabsf
#define real_pow powf
