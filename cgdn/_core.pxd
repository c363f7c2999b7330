# The core's C-level interface: the kernel tables (cgdn/simd/table.h) as Cython sees them,
# and the tile loops that cgdn._testing drives with its own tiles and scratch.

cdef extern from "simd/table.h" nogil:
    enum:
        CGDN_POOL_SQUARE
        CGDN_POOL_ABS
        CGDN_POOL_POW
        CGDN_TILE_PAD

    ctypedef struct cgdn_settings:
        int pool_mode
        int fast_mode
        double alpha
        double epsilon
        int inverse
        int rectify

    ctypedef struct cgdn_tile:
        const void* beta
        const void* gamma
        const void* mixer
        Py_ssize_t n_ch
        int fused
        int fused_wide
        int fused_planes
        int slab_norm
        double gamma_max
        int underflow_risk

    ctypedef struct cgdn_kernels:
        const char* isa
        int registers
        int max_panel_vectors
        Py_ssize_t lanes
        Py_ssize_t itemsize
        int (*mixer_shared)(Py_ssize_t C) noexcept nogil
        Py_ssize_t (*mixer_size)(Py_ssize_t C, int channels_last) noexcept nogil
        void (*make_mixer)(const void* gamma, Py_ssize_t C, int channels_last,
                           void* m) noexcept nogil
        void (*plan)(cgdn_tile* t) noexcept nogil
        int (*tile_last)(const void* x, void* out, const cgdn_tile* t, void* f, void* pool,
                         Py_ssize_t n_rows, const cgdn_settings* s, int check) noexcept nogil
        int (*tile_first)(const void* x, void* out, const cgdn_tile* t, void* f, void* pool,
                          Py_ssize_t n_pos, Py_ssize_t row_stride, Py_ssize_t out_stride,
                          const cgdn_settings* s, int check) noexcept nogil
        int (*pixel_bad)(const void* x, Py_ssize_t x_stride, const void* n,
                         Py_ssize_t n_stride, const cgdn_tile* t,
                         const cgdn_settings* s) noexcept nogil
        void (*gemm_plain)(const void* a, Py_ssize_t a_rs, const void* b, Py_ssize_t b_rs,
                           void* c, Py_ssize_t c_rs, Py_ssize_t depth, Py_ssize_t n_rows,
                           Py_ssize_t n_cols) noexcept nogil

    ctypedef struct cgdn_variant:
        const cgdn_kernels* f32
        const cgdn_kernels* f64

    const cgdn_variant cgdn_variants[]


# What the careful path reads for a call: the logarithms of its parameters.
cdef struct Careful:
    const double* log_gamma     # (C, C): log gamma[j, i], -inf at 0
    const double* log_beta      # (C,)


cdef class Variant:
    """One kernel variant (an instruction set): its tables and the entry points on them."""
    cdef const cgdn_variant* v
    cdef readonly str ISA
    cdef readonly int VECTOR_REGISTERS
    cdef readonly int MAX_PANEL_VECTORS
    cdef readonly dict LANES


cdef const cgdn_kernels* kernels_of(const cgdn_variant* v, Py_ssize_t itemsize) noexcept nogil
cdef cgdn_settings make_settings(double alpha, double epsilon, bint inverse, bint rectify)
cdef Py_ssize_t tile_area(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                          bint channels_last) noexcept nogil
cdef Py_ssize_t scratch_elements(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                                 bint channels_last) noexcept nogil
cdef void* new_mixer(const cgdn_kernels* k, const void* gamma, Py_ssize_t n_ch,
                     bint channels_last, void** block) except NULL
cdef const void* tile_mixer(const cgdn_kernels* k, const void* gamma, Py_ssize_t n_ch,
                            bint channels_last, void** block) except NULL
cdef cgdn_tile make_tile(const cgdn_kernels* k, const void* beta, const void* gamma,
                         Py_ssize_t n_ch, const void* mixer,
                         double gamma_max=*) noexcept nogil
cdef Py_ssize_t tiles_channels_last(const cgdn_variant* v, Py_ssize_t itemsize,
                                    const char* x, char* out, const cgdn_tile* tl,
                                    Py_ssize_t n_pixels, Py_ssize_t tile, char* scratch,
                                    Py_ssize_t scratch_stride, unsigned char* flags,
                                    const cgdn_settings* s, int num_threads) noexcept nogil
cdef Py_ssize_t tiles_channels_first(const cgdn_variant* v, Py_ssize_t itemsize,
                                     const char* x, char* out, const cgdn_tile* tl,
                                     Py_ssize_t n_batch, Py_ssize_t n_pos, Py_ssize_t tile,
                                     Py_ssize_t head, char* scratch,
                                     Py_ssize_t scratch_stride, unsigned char* flags,
                                     const cgdn_settings* s, int num_threads) noexcept nogil
cdef Py_ssize_t used_head(Py_ssize_t n_pos, Py_ssize_t tile, Py_ssize_t head) except -1
cdef Py_ssize_t n_blocks(Py_ssize_t n_pos, Py_ssize_t tile, Py_ssize_t head) noexcept nogil
cdef Py_ssize_t rescue_bytes(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                             bint channels_last, Py_ssize_t itemsize) noexcept nogil
cdef Py_ssize_t rescue_tile(const cgdn_variant* v, Py_ssize_t itemsize, const char* x,
                            char* out, const cgdn_tile* tl, const cgdn_settings* s,
                            Py_ssize_t n_units, bint channels_last, Py_ssize_t t,
                            Py_ssize_t tile, Py_ssize_t head, char* work,
                            unsigned char* bad, const Careful* careful) noexcept nogil
