# The SIMD kernels (cgdn/simd/kernels.h) as Cython sees them: the C declarations once,
# then fused-type wrappers so the tile loops in _kernels_impl.pxi read as the algorithm.
# Each module that cimports this compiles the header with its own instruction set.
from cython cimport floating

cdef extern from "simd/kernels.h" nogil:
    const char* CGDN_ISA_NAME
    int CGDN_NREG, CGDN_KMAX, CGDN_F32_LANES, CGDN_F64_LANES
    int CGDN_GDN_SQRT, CGDN_IGDN_SQRT, CGDN_GDN_ONE, CGDN_IGDN_ONE

    Py_ssize_t cgdn_rows_packed_size_f32(Py_ssize_t n_ch)
    Py_ssize_t cgdn_rows_packed_size_f64(Py_ssize_t n_ch)
    void cgdn_rows_pack_f32(const float* gamma, Py_ssize_t n_ch, float* packed)
    void cgdn_rows_pack_f64(const double* gamma, Py_ssize_t n_ch, double* packed)
    bint cgdn_mix_rows_f32(const float* f, const float* packed, const float* gamma,
                           const float* beta, float* pool, Py_ssize_t n, Py_ssize_t n_ch)
    bint cgdn_mix_rows_f64(const double* f, const double* packed, const double* gamma,
                           const double* beta, double* pool, Py_ssize_t n, Py_ssize_t n_ch)
    bint cgdn_mix_rows_shared_f32(Py_ssize_t n_ch)
    bint cgdn_mix_rows_shared_f64(Py_ssize_t n_ch)
    bint cgdn_fused_rows_supported_f32(Py_ssize_t n_ch)
    bint cgdn_fused_rows_supported_f64(Py_ssize_t n_ch)
    bint cgdn_fused_rows_f32(const float* x, float* y, const float* packed, const float* gamma,
                             const float* beta, Py_ssize_t n, Py_ssize_t n_ch, int mode,
                             int rectify, int pool_abs)
    bint cgdn_fused_rows_f64(const double* x, double* y, const double* packed,
                             const double* gamma, const double* beta, Py_ssize_t n,
                             Py_ssize_t n_ch, int mode, int rectify, int pool_abs)
    bint cgdn_fused_wide_supported_f32(Py_ssize_t n_ch)
    bint cgdn_fused_wide_supported_f64(Py_ssize_t n_ch)
    bint cgdn_fused_wide_f32(const float* x, float* y, float* work, const float* packed,
                             const float* beta, Py_ssize_t n, Py_ssize_t n_ch, int mode,
                             int rectify, int pool_abs)
    bint cgdn_fused_wide_f64(const double* x, double* y, double* work, const double* packed,
                             const double* beta, Py_ssize_t n, Py_ssize_t n_ch, int mode,
                             int rectify, int pool_abs)
    void cgdn_gemm_plain_f64(const double* a, Py_ssize_t a_rs, const double* b,
                             Py_ssize_t b_rs, double* c, Py_ssize_t c_rs, Py_ssize_t depth,
                             Py_ssize_t n_rows, Py_ssize_t n_cols)
    bint cgdn_fused_planes_supported_f32(Py_ssize_t n_ch)
    bint cgdn_fused_planes_supported_f64(Py_ssize_t n_ch)
    bint cgdn_fused_planes_f32(const float* x, Py_ssize_t xs, float* y, Py_ssize_t ys,
                               const float* gamma, const float* beta, Py_ssize_t n,
                               Py_ssize_t n_ch, int mode, int rectify, int pool_abs)
    bint cgdn_fused_planes_f64(const double* x, Py_ssize_t xs, double* y, Py_ssize_t ys,
                               const double* gamma, const double* beta, Py_ssize_t n,
                               Py_ssize_t n_ch, int mode, int rectify, int pool_abs)
    Py_ssize_t cgdn_slab_stride_f32(Py_ssize_t n)
    Py_ssize_t cgdn_slab_stride_f64(Py_ssize_t n)
    bint cgdn_mix_slab_f32(const float* f, const float* gamma_t, const float* beta,
                           float* pool, Py_ssize_t n, Py_ssize_t n_ch)
    bint cgdn_mix_slab_f64(const double* f, const double* gamma_t, const double* beta,
                           double* pool, Py_ssize_t n, Py_ssize_t n_ch)
    bint cgdn_mix_slab_norm_supported_f32(Py_ssize_t n_ch)
    bint cgdn_mix_slab_norm_supported_f64(Py_ssize_t n_ch)
    bint cgdn_mix_slab_norm_f32(const float* x, Py_ssize_t xs, float* y, Py_ssize_t ys,
                                const float* f, const float* gamma_t, const float* beta,
                                Py_ssize_t n, Py_ssize_t n_ch, int mode, int rectify)
    bint cgdn_mix_slab_norm_f64(const double* x, Py_ssize_t xs, double* y, Py_ssize_t ys,
                                const double* f, const double* gamma_t, const double* beta,
                                Py_ssize_t n, Py_ssize_t n_ch, int mode, int rectify)
    void cgdn_normalize_f32(const float* x, const float* n, float* out, Py_ssize_t count,
                            int mode, int rectify)
    void cgdn_normalize_f64(const double* x, const double* n, double* out, Py_ssize_t count,
                            int mode, int rectify)
    bint cgdn_any_out_of_range_f32(const float* n, Py_ssize_t count)
    bint cgdn_any_out_of_range_f64(const double* n, Py_ssize_t count)


cdef inline Py_ssize_t rows_packed_size(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    if floating is float:
        return cgdn_rows_packed_size_f32(n_ch)
    else:
        return cgdn_rows_packed_size_f64(n_ch)


cdef inline void rows_pack(const floating* gamma, Py_ssize_t n_ch,
                           floating* packed) noexcept nogil:
    if floating is float:
        cgdn_rows_pack_f32(gamma, n_ch, packed)
    else:
        cgdn_rows_pack_f64(gamma, n_ch, packed)


cdef inline bint mix_rows(const floating* f, const floating* packed, const floating* gamma,
                          const floating* beta, floating* pool, Py_ssize_t n,
                          Py_ssize_t n_ch) noexcept nogil:
    # True: every pool is certainly in range; False: check them
    if floating is float:
        return cgdn_mix_rows_f32(f, packed, gamma, beta, pool, n, n_ch)
    else:
        return cgdn_mix_rows_f64(f, packed, gamma, beta, pool, n, n_ch)


cdef inline bint mix_rows_shared(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    # whether mix_rows (and fused_rows) read gamma itself at n_ch channels, not the packing
    if floating is float:
        return cgdn_mix_rows_shared_f32(n_ch)
    else:
        return cgdn_mix_rows_shared_f64(n_ch)


cdef inline bint fused_rows_supported(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    # whether fused_rows can do a channels_last tile of n_ch channels in one pass
    if floating is float:
        return cgdn_fused_rows_supported_f32(n_ch)
    else:
        return cgdn_fused_rows_supported_f64(n_ch)


cdef inline bint fused_rows(const floating* x, floating* y, const floating* packed,
                            const floating* gamma, const floating* beta, Py_ssize_t n,
                            Py_ssize_t n_ch, int mode, bint rectify,
                            bint pool_abs) noexcept nogil:
    # True: y holds the GDN of x; False: a pool was out of range, y holds garbage
    if floating is float:
        return cgdn_fused_rows_f32(x, y, packed, gamma, beta, n, n_ch, mode, rectify,
                                   pool_abs)
    else:
        return cgdn_fused_rows_f64(x, y, packed, gamma, beta, n, n_ch, mode, rectify,
                                   pool_abs)


cdef inline bint fused_wide_supported(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    # whether fused_wide can do a channels_last tile of n_ch channels in one pass
    if floating is float:
        return cgdn_fused_wide_supported_f32(n_ch)
    else:
        return cgdn_fused_wide_supported_f64(n_ch)


cdef inline bint fused_wide(const floating* x, floating* y, floating* work,
                            const floating* packed, const floating* beta, Py_ssize_t n,
                            Py_ssize_t n_ch, int mode, bint rectify,
                            bint pool_abs) noexcept nogil:
    # as fused_rows, for more channels than one GEMM panel; work: scratch, not y
    if floating is float:
        return cgdn_fused_wide_f32(x, y, work, packed, beta, n, n_ch, mode, rectify, pool_abs)
    else:
        return cgdn_fused_wide_f64(x, y, work, packed, beta, n, n_ch, mode, rectify, pool_abs)


cdef inline bint fused_planes_supported(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    if floating is float:
        return cgdn_fused_planes_supported_f32(n_ch)
    else:
        return cgdn_fused_planes_supported_f64(n_ch)


cdef inline bint fused_planes(const floating* x, Py_ssize_t xs, floating* y, Py_ssize_t ys,
                              const floating* gamma, const floating* beta, Py_ssize_t n,
                              Py_ssize_t n_ch, int mode, bint rectify,
                              bint pool_abs) noexcept nogil:
    # channels_first rows; as fused_rows
    if floating is float:
        return cgdn_fused_planes_f32(x, xs, y, ys, gamma, beta, n, n_ch, mode, rectify,
                                     pool_abs)
    else:
        return cgdn_fused_planes_f64(x, xs, y, ys, gamma, beta, n, n_ch, mode, rectify,
                                     pool_abs)


cdef inline Py_ssize_t slab_stride(floating dtype_tag, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return cgdn_slab_stride_f32(n)
    else:
        return cgdn_slab_stride_f64(n)


cdef inline bint mix_slab(const floating* f, const floating* gamma_t, const floating* beta,
                          floating* pool, Py_ssize_t n, Py_ssize_t n_ch) noexcept nogil:
    # as mix_rows
    if floating is float:
        return cgdn_mix_slab_f32(f, gamma_t, beta, pool, n, n_ch)
    else:
        return cgdn_mix_slab_f64(f, gamma_t, beta, pool, n, n_ch)


cdef inline void normalize(const floating* x, const floating* n, floating* out,
                           Py_ssize_t count, int mode, bint rectify) noexcept nogil:
    if floating is float:
        cgdn_normalize_f32(x, n, out, count, mode, rectify)
    else:
        cgdn_normalize_f64(x, n, out, count, mode, rectify)


cdef inline bint any_out_of_range(const floating* n, Py_ssize_t count) noexcept nogil:
    if floating is float:
        return cgdn_any_out_of_range_f32(n, count)
    else:
        return cgdn_any_out_of_range_f64(n, count)


cdef inline bint mix_slab_norm_supported(floating dtype_tag, Py_ssize_t n_ch) noexcept nogil:
    if floating is float:
        return cgdn_mix_slab_norm_supported_f32(n_ch)
    else:
        return cgdn_mix_slab_norm_supported_f64(n_ch)


cdef inline bint mix_slab_norm(const floating* x, Py_ssize_t xs, floating* y, Py_ssize_t ys,
                               const floating* f, const floating* gamma_t,
                               const floating* beta, Py_ssize_t n, Py_ssize_t n_ch, int mode,
                               bint rectify) noexcept nogil:
    # y = x normalized, the pools summed from f and never stored; False: y is garbage
    if floating is float:
        return cgdn_mix_slab_norm_f32(x, xs, y, ys, f, gamma_t, beta, n, n_ch, mode, rectify)
    else:
        return cgdn_mix_slab_norm_f64(x, xs, y, ys, f, gamma_t, beta, n, n_ch, mode, rectify)
