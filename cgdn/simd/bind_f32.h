/* Binds the generic names of the kernel families to float32 (see kernels.h). */
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
#define v_rsqrt_est cgdn_f32_rsqrt_est
#define v_rcp_est cgdn_f32_rcp_est
#define vrange cgdn_rf32
#define v_range_init cgdn_f32_range_init
#define v_range_fold cgdn_f32_range_fold
#define v_range_ok cgdn_f32_range_ok
/* range of positive normal finite values, as bit patterns */
#define REAL_BITS_MIN 0x00800000u
#define REAL_BITS_MAX 0x7F7FFFFFu
/* kernel names: every function of the families, one per dtype */
#define gemm_block cgdn_gemm_block_f32
#define gemm_rows cgdn_gemm_rows_f32
#define gemm_cols cgdn_gemm_cols_f32
#define rows_panel_width cgdn_rows_panel_width_f32
#define rows_packed_size cgdn_rows_packed_size_f32
#define rows_pack cgdn_rows_pack_f32
#define mix_rows_blocked cgdn_mix_rows_blocked_f32
#define mix_rows_shared_body cgdn_mix_rows_shared_body_f32
#define mix_rows_single cgdn_mix_rows_single_f32
#define mix_rows_shared cgdn_mix_rows_shared_f32
#define mix_rows cgdn_mix_rows_f32
#define slab_stride cgdn_slab_stride_f32
#define mix_slab cgdn_mix_slab_f32
#define normalize_one cgdn_normalize_one_f32
#define normalize_loop cgdn_normalize_loop_f32
#define normalize cgdn_normalize_f32
#define any_out_of_range cgdn_any_out_of_range_f32
