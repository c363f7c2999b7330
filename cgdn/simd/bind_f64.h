/* Binds the generic names of the kernel families to float64 (see kernels.h). */
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
#define v_rsqrt_est cgdn_f64_rsqrt_est
#define v_rcp_est cgdn_f64_rcp_est
#define vrange cgdn_rf64
#define v_range_init cgdn_f64_range_init
#define v_range_fold cgdn_f64_range_fold
#define v_range_ok cgdn_f64_range_ok
/* range of positive normal finite values, as bit patterns */
#define REAL_BITS_MIN 0x0010000000000000ull
#define REAL_BITS_MAX 0x7FEFFFFFFFFFFFFFull
/* kernel names: every function of the families, one per dtype */
#define gemm_block cgdn_gemm_block_f64
#define gemm_rows cgdn_gemm_rows_f64
#define gemm_cols cgdn_gemm_cols_f64
#define rows_panel_width cgdn_rows_panel_width_f64
#define rows_packed_size cgdn_rows_packed_size_f64
#define rows_pack cgdn_rows_pack_f64
#define mix_rows_blocked cgdn_mix_rows_blocked_f64
#define mix_rows_shared_body cgdn_mix_rows_shared_body_f64
#define mix_rows_single cgdn_mix_rows_single_f64
#define mix_rows_shared cgdn_mix_rows_shared_f64
#define mix_rows cgdn_mix_rows_f64
#define slab_stride cgdn_slab_stride_f64
#define mix_slab cgdn_mix_slab_f64
#define normalize_one cgdn_normalize_one_f64
#define normalize_loop cgdn_normalize_loop_f64
#define normalize cgdn_normalize_f64
#define any_out_of_range cgdn_any_out_of_range_f64
