# Compiler directives (boundscheck, wraparound, cdivision, ...) are set once, in setup.py.
# This file is the body of every ISA variant of the kernels (_kernels.pyx: baseline, i.e.
# SSE2 on x86-64 and NEON on aarch64; _kernels_avx2.pyx; _kernels_avx512.pyx); setup.py
# compiles each with its own -m flags and cgdn._isa picks one at import from the CPU's
# features. The SIMD loops are in cgdn/simd/ (written once against per-ISA vector
# primitives) and reach this file through the fused wrappers of cgdn/_simd.pxd.
#
# The kernels are called by cgdn._gdn with validated, C-contiguous, same-dtype buffers
# only, so they cannot fail: they are ``noexcept nogil`` and run ``prange`` over tiles of
# pixels. Each tile is processed while it is in cache: the pool input f(x) goes to this
# thread's scratch, is mixed across channels (a register-blocked GEMM, cgdn/simd/gemm.h)
# into beta + pool, and the output is written from it. ``out`` may be ``x``: every
# element of x is read before the element of out at the same place is written. No BLAS
# runs inside the kernels, so results never depend on a BLAS library's thread settings.
#
# gamma convention: gamma[j, i] weighs input channel j in the pool of output channel i
# (TensorFlow's orientation), i.e. pool = f(x) @ gamma per pixel.

import numpy as np

from cpython.buffer cimport PyBUF_ANY_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.float cimport DBL_MAX, DBL_MIN, FLT_MAX, FLT_MIN
from libc.math cimport fabs, fabsf, pow, powf
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from cgdn._openmp cimport CGDN_OPENMP_ENABLED, omp_get_max_threads
from cgdn cimport _simd
from cgdn._simd cimport (CGDN_F32_LANES, CGDN_F64_LANES, CGDN_GDN_ONE, CGDN_GDN_SQRT,
                         CGDN_IGDN_ONE, CGDN_IGDN_SQRT, CGDN_ISA_NAME, CGDN_KMAX, CGDN_NREG)

cdef extern from *:
    """
    #ifndef CGDN_DEBUG_BUILD
    #define CGDN_DEBUG_BUILD 0
    #endif
    """
    bint CGDN_DEBUG_BUILD

# Whether this module was built with CGDN_CYTHON_DEBUG=1 (bounds checks on).
DEBUG_BUILD = bool(CGDN_DEBUG_BUILD)
# The instruction set this variant was compiled for.
ISA = CGDN_ISA_NAME.decode()
# Its register file and vector width, and the register blocking derived from them.
VECTOR_REGISTERS = CGDN_NREG
LANES = {"float32": CGDN_F32_LANES, "float64": CGDN_F64_LANES}
MAX_PANEL_VECTORS = CGDN_KMAX

# Padding, in elements, after each of a tile's two scratch areas (f and pool): the mixers
# read and write up to one vector past a tile's last pixel. A cache line, in bytes: each
# thread's scratch and the packed gamma start on one (NumPy and malloc place blocks 16,
# 32 or 48 bytes past a line, where every AVX-512 vector load straddles two lines), and
# the slack, in elements, that a scratch row keeps for moving its start onto a line.
cdef enum:
    _PAD = 32
    _LINE = 64
    _LINE_SLACK = 16


cdef inline void* _line_start(void* p) noexcept nogil:
    # the first cache line boundary at or after p
    return <void*> ((<uintptr_t> p + (_LINE - 1)) & ~(<uintptr_t> (_LINE - 1)))


cdef inline Py_ssize_t _tile_area(Py_ssize_t n_channels, Py_ssize_t tile,
                                  bint channels_last) noexcept nogil:
    # elements of one of a tile's two scratch areas (f, then pool), padding included
    if channels_last:
        return tile * n_channels + _PAD
    # channels_first rows are whole vectors long (_simd.slab_stride): round up to this
    # variant's widest vector, float32's
    return n_channels * ((tile + CGDN_F32_LANES - 1) // CGDN_F32_LANES * CGDN_F32_LANES) + _PAD


def scratch_size(Py_ssize_t n_channels, Py_ssize_t tile, bint channels_last):
    """Scratch elements one thread needs for tiles of ``tile`` pixels (or positions): its
    two areas, and the slack for starting them on a cache line wherever the row starts."""
    return 2 * _tile_area(n_channels, tile, channels_last) + _LINE_SLACK


def line_offset(obj):
    """Bytes from the last cache line boundary to the start of a contiguous buffer
    (``obj.ctypes.data % 64`` for an ndarray, without its microseconds of overhead)."""
    cdef Py_buffer view
    cdef uintptr_t offset
    PyObject_GetBuffer(obj, &view, PyBUF_ANY_CONTIGUOUS)
    offset = <uintptr_t> view.buf % _LINE
    PyBuffer_Release(&view)
    return offset


cdef enum PoolMode:
    POOL_SQUARE = 0     # alpha == 2: f(v) = v * v
    POOL_ABS = 1        # alpha == 1: f(v) = |v|
    POOL_POW = 2        # other alpha: f(v) = |v| ** alpha


cdef struct Settings:
    PoolMode pool_mode
    int fast_mode       # a CGDN_* normalization mode (cgdn/simd/vec.h), or -1 for pow(n, epsilon)
    double alpha
    double epsilon
    bint inverse
    bint rectify


cdef Settings _make_settings(double alpha, double epsilon, bint inverse, bint rectify):
    cdef Settings s
    s.pool_mode = POOL_SQUARE if alpha == 2.0 else (POOL_ABS if alpha == 1.0 else POOL_POW)
    if epsilon == 0.5:
        s.fast_mode = CGDN_IGDN_SQRT if inverse else CGDN_GDN_SQRT
    elif epsilon == 1.0:
        s.fast_mode = CGDN_IGDN_ONE if inverse else CGDN_GDN_ONE
    else:
        s.fast_mode = -1
    s.alpha = alpha
    s.epsilon = epsilon
    s.inverse = inverse
    s.rectify = rectify
    return s


# ---------------------------------------------------------------------------------------
# Scalar helpers

cdef inline floating _pow(floating v, floating e) noexcept nogil:
    if floating is float:
        return powf(v, e)
    else:
        return pow(v, e)


cdef inline floating _rectified(floating v, bint rectify) noexcept nogil:
    # max(v, 0) when rectifying; NaN stays NaN, as in TensorFlow's relu.
    if rectify and v < 0:
        return 0
    return v


cdef inline floating _abs(floating v) noexcept nogil:
    # the sign bit cleared (-0 -> +0), as the vector kernels' abs
    if floating is float:
        return fabsf(v)
    else:
        return fabs(v)


cdef inline bint _out_of_range(floating n) noexcept nogil:
    # beta + pool overflowed, is zero or subnormal, or is NaN: the fast path may have lost
    # the answer (x = 1e30 in float32 squares to inf; inf * 0 in the mix gives NaN).
    if floating is float:
        return not (n >= FLT_MIN and n <= FLT_MAX)
    else:
        return not (n >= DBL_MIN and n <= DBL_MAX)


cdef inline bint _finite(floating v) noexcept nogil:
    return v - v == 0   # false for inf and NaN


# ---------------------------------------------------------------------------------------
# Passes over one contiguous run of elements

cdef void _pool_input(const floating* x,     # IN  n elements
                      floating* f,           # OUT n elements: f(x)
                      Py_ssize_t n, const Settings* s) noexcept nogil:
    cdef Py_ssize_t k
    cdef floating v, alpha = <floating> s.alpha
    cdef bint rectify = s.rectify
    if s.pool_mode == POOL_SQUARE:
        if rectify:
            for k in range(n):
                v = _rectified(x[k], True)
                f[k] = v * v
        else:
            for k in range(n):
                f[k] = x[k] * x[k]
    elif s.pool_mode == POOL_ABS:
        for k in range(n):
            f[k] = _abs(_rectified(x[k], rectify))
    else:
        for k in range(n):
            f[k] = _pow(_abs(_rectified(x[k], rectify)), alpha)


cdef void _normalize_run(const floating* x,    # IN  n elements
                         const floating* n,    # IN  n elements: beta + pool, in range
                         floating* out,        # OUT n elements; may be x
                         Py_ssize_t count, const Settings* s) noexcept nogil:
    cdef Py_ssize_t k
    cdef floating epsilon = <floating> s.epsilon, root
    if s.fast_mode >= 0:
        _simd.normalize(x, n, out, count, s.fast_mode, s.rectify)
        return
    for k in range(count):
        root = _pow(n[k], epsilon)
        if s.inverse:
            out[k] = _rectified(x[k], s.rectify) * root
        else:
            out[k] = _rectified(x[k], s.rectify) / root


# ---------------------------------------------------------------------------------------
# Out-of-range pools
#
# A pixel needs the careful path when beta + pool is out of range (see _out_of_range)
# although all its inputs are finite. (With a NaN or Inf input a pixel has no finite
# answer; the fast path's NaN stays confined to it.) In the fast pass a tile holding such
# a pixel is flagged and left unwritten, so even in place its input is intact. The caller
# then runs ``rescue_tile``: the same tile arithmetic into a temporary, whose in-range
# pixels are copied out (bit-identical to a clean run); the others are marked for the
# careful path.

cdef bint _pixel_bad(const floating* x, Py_ssize_t x_stride,   # IN  the pixel's inputs
                     const floating* n, Py_ssize_t n_stride,   # IN  its beta + pool
                     Py_ssize_t n_ch) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint pool_bad = False
    for i in range(n_ch):
        pool_bad |= _out_of_range(n[i * n_stride])
    if not pool_bad:
        return False
    for i in range(n_ch):
        if not _finite(x[i * x_stride]):
            return False
    return True


# ---------------------------------------------------------------------------------------
# Tiles

cdef struct Tile:
    const void* beta      # (C,)
    const void* gamma     # (C, C): gamma[j, i], j = input channel
    const void* mixer     # channels_last: gamma packed in panels (_simd.rows_pack);
                          # channels_first: gamma transposed, (C, C)
    Py_ssize_t n_ch
    bint fused            # channels_last: few channels, one pass per tile
    bint fused_wide       # channels_last: more than a GEMM panel, one pass per tile
    bint fused_planes     # channels_first: few channels, one pass per tile
    bint slab_norm        # channels_first: the mix normalizes its blocks (two passes)


cdef bint _gdn_tile_channels_last(
        const floating* x,      # IN  (n_rows, n_ch) pixels of this tile
        floating* out,          # OUT (n_rows, n_ch); may be x
        const Tile* tl,
        floating* f,            # SCRATCH (n_rows, n_ch) + _PAD
        floating* pool,         # SCRATCH (n_rows, n_ch) + _PAD: beta + pool
        Py_ssize_t n_rows, const Settings* s, bint check) noexcept nogil:
    """Return True (and write nothing) if ``check`` and a pixel needs the careful path."""
    cdef Py_ssize_t r, n_ch = tl.n_ch
    cdef bint in_range, done
    cdef floating* dst
    cdef floating* work
    if check and (tl.fused or tl.fused_wide) and s.fast_mode >= 0 and s.pool_mode != POOL_POW:
        # one pass, in registers; in place it writes to scratch first (its whole-vector
        # stores run ahead of the inputs still to read, and a pool out of range is known
        # only after earlier pixels are stored). A pool out of range sends the tile through
        # the three passes below, which check every pixel.
        if out == x:
            dst, work = f, pool
        else:
            dst, work = out, f
        if tl.fused:
            done = _simd.fused_rows(x, dst, <const floating*> tl.mixer,
                                    <const floating*> tl.gamma, <const floating*> tl.beta,
                                    n_rows, n_ch, s.fast_mode, s.rectify,
                                    s.pool_mode == POOL_ABS)
        else:
            done = _simd.fused_wide(x, dst, work, <const floating*> tl.mixer,
                                    <const floating*> tl.beta, n_rows, n_ch, s.fast_mode,
                                    s.rectify, s.pool_mode == POOL_ABS)
        if done:
            if dst != out:
                memcpy(out, dst, n_rows * n_ch * sizeof(floating))
            return False
    _pool_input(x, f, n_rows * n_ch, s)
    # the mix checks the range of what it computes on the fly; only a doubt costs a pass
    in_range = _simd.mix_rows(f, <const floating*> tl.mixer, <const floating*> tl.gamma,
                              <const floating*> tl.beta, pool, n_rows, n_ch)
    if check and not in_range and _simd.any_out_of_range(pool, n_rows * n_ch):
        for r in range(n_rows):
            if _pixel_bad(x + r * n_ch, 1, pool + r * n_ch, 1, n_ch):
                return True
    _normalize_run(x, pool, out, n_rows * n_ch, s)
    return False


cdef inline void _copy_rows(const floating* src, Py_ssize_t src_stride,   # IN  n_rows rows
                            floating* dst, Py_ssize_t dst_stride,         # OUT
                            Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil:
    # n elements of each row: a channels_first tile computed in scratch, to its output
    cdef Py_ssize_t i
    for i in range(n_rows):
        memcpy(dst + i * dst_stride, src + i * src_stride, n * sizeof(floating))


cdef bint _gdn_tile_channels_first(
        const floating* x,      # IN  channel i of this block at x + i * row_stride
        floating* out,          # OUT channel i at out + i * out_stride; may be x
        const Tile* tl,
        floating* f,            # SCRATCH (n_ch, stride): stride = _simd.slab_stride(n_pos)
        floating* pool,         # SCRATCH (n_ch, stride): beta + pool
        Py_ssize_t n_pos, Py_ssize_t row_stride, Py_ssize_t out_stride,
        const Settings* s, bint check) noexcept nogil:
    """Return True (and write nothing) if ``check`` and a pixel needs the careful path."""
    cdef Py_ssize_t i, k, n_ch = tl.n_ch, dst_stride
    cdef Py_ssize_t stride = _simd.slab_stride(<floating> 0, n_pos)
    cdef bint in_range
    cdef floating* dst
    if check and tl.fused_planes and s.fast_mode >= 0 and s.pool_mode != POOL_POW:
        # one pass, in registers, as _gdn_tile_channels_last; in place through scratch
        if out == x:
            dst, dst_stride = f, stride
        else:
            dst, dst_stride = out, out_stride
        if _simd.fused_planes(x, row_stride, dst, dst_stride, <const floating*> tl.gamma,
                              <const floating*> tl.beta, n_pos, n_ch, s.fast_mode,
                              s.rectify, s.pool_mode == POOL_ABS):
            if dst != out:
                _copy_rows(dst, dst_stride, out, out_stride, n_ch, n_pos)
            return False
    for i in range(n_ch):
        _pool_input(x + i * row_stride, f + i * stride, n_pos, s)
    if check and tl.slab_norm and s.fast_mode >= 0:
        # two passes: the mix normalizes each block of pools in registers (in place
        # through scratch, as above); a pool out of range sends the tile on to the passes
        # below, f(x) already computed. f's lanes past n_pos are zeroed so that their
        # pools (beta) pass the mix's range check
        if stride != n_pos:
            for i in range(n_ch):
                memset(f + i * stride + n_pos, 0, (stride - n_pos) * sizeof(floating))
        if out == x:
            dst, dst_stride = pool, stride
        else:
            dst, dst_stride = out, out_stride
        if _simd.mix_slab_norm(x, row_stride, dst, dst_stride, f, <const floating*> tl.mixer,
                               <const floating*> tl.beta, n_pos, n_ch, s.fast_mode,
                               s.rectify):
            if dst != out:
                _copy_rows(dst, dst_stride, out, out_stride, n_ch, n_pos)
            return False
    in_range = _simd.mix_slab(f, <const floating*> tl.mixer, <const floating*> tl.beta, pool,
                              n_pos, n_ch)
    if check and not in_range:
        for i in range(n_ch):
            if _simd.any_out_of_range(pool + i * stride, n_pos):
                for k in range(n_pos):
                    if _pixel_bad(x + k, row_stride, pool + k, stride, n_ch):
                        return True
                break
    for i in range(n_ch):
        _normalize_run(x + i * row_stride, pool + i * stride, out + i * out_stride, n_pos, s)
    return False


# ---------------------------------------------------------------------------------------
# Entry points (hold the GIL only to set up; the work runs without it)

cdef int _check_common(Py_ssize_t n_ch, Py_ssize_t beta_len, Py_ssize_t g0, Py_ssize_t g1,
                       Py_ssize_t tile, Py_ssize_t scratch_rows, Py_ssize_t scratch_len,
                       Py_ssize_t n_flags, Py_ssize_t n_tiles, int num_threads,
                       bint channels_last) except -1:
    # Guards for direct callers of this private module; cgdn._gdn always passes these.
    if beta_len != n_ch or g0 != n_ch or g1 != n_ch:
        raise ValueError("beta and gamma must match the channel count")
    if tile < 1 or num_threads < 1:
        raise ValueError("tile and num_threads must be >= 1")
    if scratch_rows < num_threads or scratch_len < scratch_size(n_ch, tile, channels_last):
        raise ValueError("scratch must have shape (>= num_threads, "
                         ">= scratch_size(n_channels, tile, channels_last))")
    if n_flags < n_tiles:
        raise ValueError("flags must have one entry per tile")
    return 0


cdef inline Py_ssize_t _mixer_size(floating dtype_tag, Py_ssize_t n_ch,
                                   bint channels_last) noexcept nogil:
    # elements of the mixer (see _new_mixer)
    if channels_last:
        return max(1, _simd.rows_packed_size(<floating> 0, n_ch))
    return n_ch * n_ch


cdef floating* _new_mixer(const floating[:, ::1] gamma, bint channels_last,
                         void** block) except NULL:
    # gamma as the tile's mixer reads it: packed in panels (channels_last) or transposed
    # (channels_first), in C memory that starts on a cache line (the GEMM loads every
    # vector of the panels once per block of pixels; at 16-48 bytes past a line every
    # AVX-512 load straddles two). *block receives what the caller frees. Made in C, not
    # as a NumPy array: the array's placement and alignment took microseconds per call.
    cdef Py_ssize_t n_ch = gamma.shape[0], i, j
    cdef floating* m
    block[0] = malloc(_mixer_size(<floating> 0, n_ch, channels_last) * sizeof(floating) + _LINE)
    if block[0] == NULL:
        raise MemoryError()
    m = <floating*> _line_start(block[0])
    if channels_last:
        _simd.rows_pack(&gamma[0, 0], n_ch, m)
    else:
        for i in range(n_ch):
            for j in range(n_ch):
                m[i * n_ch + j] = gamma[j, i]
    return m


def _mixer(const floating[:, ::1] gamma, bint channels_last):
    """``(offset, values)``: the kernels' mixer for ``gamma`` (see _new_mixer), its
    distance in bytes from a cache line boundary and a copy of its elements (for tests)."""
    cdef void* block = NULL
    cdef floating* m = _new_mixer(gamma, channels_last, &block)
    try:
        values = np.asarray(<floating[:_mixer_size(<floating> 0, gamma.shape[0],
                                                   channels_last)]> m).copy()
        return <uintptr_t> m % _LINE, values
    finally:
        free(block)


cdef Tile _make_tile(const floating[::1] beta, const floating[:, ::1] gamma,
                     const floating* mixer):
    cdef Tile tl
    tl.beta = &beta[0]
    tl.gamma = &gamma[0, 0]
    tl.mixer = mixer
    tl.n_ch = beta.shape[0]
    tl.fused = _simd.fused_rows_supported(<floating> 0, tl.n_ch)
    tl.fused_wide = not tl.fused and _simd.fused_wide_supported(<floating> 0, tl.n_ch)
    tl.fused_planes = _simd.fused_planes_supported(<floating> 0, tl.n_ch)
    tl.slab_norm = _simd.mix_slab_norm_supported(<floating> 0, tl.n_ch)
    return tl


def gdn_channels_last(const floating[:, ::1] x,        # IN  (n_pixels, n_channels)
                      const floating[::1] beta,        # IN  (n_channels,)
                      const floating[:, ::1] gamma,    # IN  (n_channels, n_channels)
                      floating[:, ::1] out,            # OUT (n_pixels, n_channels); may be x
                      floating[:, ::1] scratch,        # SCRATCH (num_threads, scratch_size)
                      unsigned char[::1] flags,        # OUT (n_tiles,): 1 = careful path
                      Py_ssize_t tile, double alpha, double epsilon,
                      bint inverse, bint rectify, int num_threads):
    """GDN over rows of a (pixels, channels) matrix, ``tile`` pixels per work unit.

    Returns the number of tiles flagged in ``flags``: they hold a pixel whose pool
    overflowed or underflowed, and were left unwritten for the careful path.
    """
    cdef Py_ssize_t n_pixels = x.shape[0], n_ch = x.shape[1]
    cdef Py_ssize_t n_tiles, t, start, n_flagged = 0, stride = scratch.shape[1], area
    cdef floating* work
    cdef unsigned char flag
    cdef int tid
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    cdef void* block = NULL
    cdef Tile tl
    if out.shape[0] != n_pixels or out.shape[1] != n_ch:
        raise ValueError("out must have the shape of x")
    if n_pixels == 0 or n_ch == 0:
        return 0
    n_tiles = (n_pixels + tile - 1) // tile
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], stride, flags.shape[0], n_tiles, num_threads, True)
    if _simd.mix_rows_shared(<floating> 0, n_ch):
        tl = _make_tile(beta, gamma, &gamma[0, 0])   # no packing: its mixers read gamma
    else:
        tl = _make_tile(beta, gamma, _new_mixer(gamma, True, &block))
    area = _tile_area(n_ch, tile, True)
    try:
        with nogil, parallel(num_threads=num_threads):
            tid = threadid()
            work = <floating*> _line_start(&scratch[tid, 0])
            for t in prange(n_tiles, schedule="static"):
                start = t * tile
                flag = _gdn_tile_channels_last(&x[start, 0], &out[start, 0], &tl, work,
                                               work + area, min(tile, n_pixels - start), &s,
                                               True)
                flags[t] = flag
                n_flagged += flag
    finally:
        free(block)
    return n_flagged


# channels_first blocks of one image: [0, head) if head > 0, then tiles of `tile`. `head`
# here is _used_head's: 0 or less than n_pos.

cdef Py_ssize_t _used_head(Py_ssize_t n_pos, Py_ssize_t tile, Py_ssize_t head) except -1:
    # the head block of an image of n_pos positions: `head`, or none (0) if it would be
    # the whole image
    if tile < 1 or head < 0 or head >= tile:
        raise ValueError("need tile >= 1 and 0 <= head < tile")
    return head if head < n_pos else 0


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n_pos, Py_ssize_t tile,
                                 Py_ssize_t head) noexcept nogil:
    return (head > 0) + (n_pos - head + tile - 1) // tile


cdef inline Py_ssize_t _block_start(Py_ssize_t k, Py_ssize_t tile,
                                    Py_ssize_t head) noexcept nogil:
    if head == 0:
        return k * tile
    return 0 if k == 0 else head + (k - 1) * tile


cdef inline Py_ssize_t _block_length(Py_ssize_t k, Py_ssize_t n_pos, Py_ssize_t tile,
                                     Py_ssize_t head) noexcept nogil:
    if head > 0 and k == 0:
        return head
    return min(tile, n_pos - _block_start(k, tile, head))


def channels_first_blocks(Py_ssize_t n_positions, Py_ssize_t tile, Py_ssize_t head):
    """Blocks (tiles) per image of :func:`gdn_channels_first` for these arguments."""
    return _n_blocks(n_positions, tile, _used_head(n_positions, tile, head))


def gdn_channels_first(const floating[:, :, ::1] x,    # IN  (n_batch, n_channels, n_positions)
                       const floating[::1] beta,       # IN  (n_channels,)
                       const floating[:, ::1] gamma,   # IN  (n_channels, n_channels)
                       floating[:, :, ::1] out,        # OUT like x; may be x
                       floating[:, ::1] scratch,       # SCRATCH (num_threads, scratch_size)
                       unsigned char[::1] flags,       # OUT (n_tiles,): 1 = careful path
                       Py_ssize_t tile, Py_ssize_t head, double alpha, double epsilon,
                       bint inverse, bint rectify, int num_threads):
    """GDN over (batch, channels, positions) blocks, ``tile`` positions per work unit.

    Each image's positions are split into ``n_blocks = channels_first_blocks(n_positions,
    tile, head)`` blocks: the first ``head`` positions (if ``0 < head < n_positions``; the
    caller picks ``head`` so that the next block starts on a cache line), then blocks of
    ``tile``. Tile ``t`` is block ``t % n_blocks`` of image ``t // n_blocks``. Returns the
    number of flagged tiles, as :func:`gdn_channels_last`.
    """
    cdef Py_ssize_t n_batch = x.shape[0], n_ch = x.shape[1], n_pos = x.shape[2]
    cdef Py_ssize_t n_blocks, n_tiles, t, b, start, n_flagged = 0, stride = scratch.shape[1]
    cdef Py_ssize_t area
    cdef floating* work
    cdef unsigned char flag
    cdef int tid
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    cdef void* block = NULL
    cdef Tile tl
    if out.shape[0] != n_batch or out.shape[1] != n_ch or out.shape[2] != n_pos:
        raise ValueError("out must have the shape of x")
    if n_batch == 0 or n_ch == 0 or n_pos == 0:
        return 0
    head = _used_head(n_pos, tile, head)
    n_blocks = _n_blocks(n_pos, tile, head)
    n_tiles = n_batch * n_blocks
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], stride, flags.shape[0], n_tiles, num_threads, False)
    area = _tile_area(n_ch, tile, False)
    tl = _make_tile(beta, gamma, _new_mixer(gamma, False, &block))
    try:
        with nogil, parallel(num_threads=num_threads):
            tid = threadid()
            work = <floating*> _line_start(&scratch[tid, 0])
            for t in prange(n_tiles, schedule="static"):
                b = t // n_blocks
                start = _block_start(t - b * n_blocks, tile, head)
                flag = _gdn_tile_channels_first(
                    &x[b, 0, start], &out[b, 0, start], &tl, work, work + area,
                    _block_length(t - b * n_blocks, n_pos, tile, head), n_pos, n_pos, &s, True)
                flags[t] = flag
                n_flagged += flag
    finally:
        free(block)
    return n_flagged


def rescue_tile(const floating[:, :, ::1] x,      # IN  canonical input (3-D view)
                const floating[::1] beta,
                const floating[:, ::1] gamma,
                floating[:, :, ::1] out,           # OUT like x; may be x
                unsigned char[::1] bad,            # OUT one flag per pixel of the tile
                bint channels_last, Py_ssize_t t, Py_ssize_t tile, Py_ssize_t head,
                double alpha, double epsilon, bint inverse, bint rectify):
    """Finish flagged tile ``t``: write its in-range pixels, mark the others in ``bad``.

    ``x`` is ``(1, n_pixels, C)`` for channels_last or ``(N, C, n_positions)`` for
    channels_first; ``tile`` and ``head`` (channels_first only) are those of the fast
    pass. The tile is computed by the same arithmetic as in the fast pass, into a
    temporary, so the pixels written are bit-identical to a clean run. Returns
    ``(b, start, n)``: the tile's image (0 for channels_last), its first pixel
    (channels_last) or position in that image (channels_first), and its number of pixels.
    """
    cdef Py_ssize_t n_ch = beta.shape[0], b = 0, start, n, n_blocks, i, k, area, stride
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    cdef void* block = NULL
    cdef Tile tl
    cdef floating[::1] w, tmp
    if channels_last:
        start = t * tile
        n = min(tile, x.shape[1] - start)
    else:
        head = _used_head(x.shape[2], tile, head)
        n_blocks = _n_blocks(x.shape[2], tile, head)
        b = t // n_blocks
        start = _block_start(t - b * n_blocks, tile, head)
        n = _block_length(t - b * n_blocks, x.shape[2], tile, head)
    if n <= 0 or bad.shape[0] < n or gamma.shape[0] != n_ch or gamma.shape[1] != n_ch:
        raise ValueError("tile index or buffers out of range")
    dtype = np.float32 if floating is float else np.float64
    w = np.empty(scratch_size(n_ch, n, channels_last), dtype=dtype)
    area = _tile_area(n_ch, n, channels_last)
    tmp = np.empty(n * n_ch, dtype=dtype)
    tl = _make_tile(beta, gamma, _new_mixer(gamma, channels_last, &block))
    stride = _simd.slab_stride(<floating> 0, n)
    try:
        with nogil:
            if channels_last:
                _gdn_tile_channels_last(&x[0, start, 0], &tmp[0], &tl, &w[0], &w[area], n,
                                        &s, False)
                for k in range(n):
                    bad[k] = _pixel_bad(&x[0, start + k, 0], 1, &w[area + k * n_ch], 1, n_ch)
                    if not bad[k]:
                        for i in range(n_ch):
                            out[0, start + k, i] = tmp[k * n_ch + i]
            else:
                _gdn_tile_channels_first(&x[b, 0, start], &tmp[0], &tl, &w[0], &w[area], n,
                                         x.shape[2], n, &s, False)
                for k in range(n):
                    bad[k] = _pixel_bad(&x[b, 0, start + k], x.shape[2], &w[area + k], stride,
                                        n_ch)
                    if not bad[k]:
                        for i in range(n_ch):
                            out[b, i, start + k] = tmp[i * n + k]
    finally:
        free(block)
    return b, start, n


def omp_max_threads():
    """``omp_get_max_threads()`` of the calling thread (1 in a build without OpenMP)."""
    return omp_get_max_threads()


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(CGDN_OPENMP_ENABLED)


include "_density_impl.pxi"
