# Compiler directives (boundscheck, wraparound, cdivision, ...) are set once, in setup.py.
# This file is the body of every ISA variant of the kernels (_kernels.pyx: baseline, i.e.
# SSE2 on x86-64 and NEON on aarch64; _kernels_avx2.pyx; _kernels_avx512.pyx); setup.py
# compiles each with its own -m flags and cgdn._isa picks one at import from the CPU's
# features. The SIMD loops are in cgdn/simd/ (written once against per-ISA vector
# primitives) and reach this file through the fused wrappers of cgdn/_simd.pxd.
#
# cgdn.apply_gdn enters through apply_plain (its plain case checked here in one call,
# microseconds cheaper than in Python) or, after its general checks and conversions,
# through run; both pick the work units here and hand the tiles C-contiguous, same-dtype
# buffers only, so the tile kernels cannot fail: they are ``noexcept nogil`` and run
# ``prange`` over tiles of pixels. Each tile is processed while it is in cache: the pool input f(x) goes to this
# thread's scratch, is mixed across channels (a register-blocked GEMM, cgdn/simd/gemm.h)
# into beta + pool, and the output is written from it. ``out`` may be ``x``: every
# element of x is read before the element of out at the same place is written. No BLAS
# runs inside the kernels, so results never depend on a BLAS library's thread settings.
#
# gamma convention: gamma[j, i] weighs input channel j in the pool of output channel i
# (TensorFlow's orientation), i.e. pool = f(x) @ gamma per pixel.

import os
import sys

import numpy as np

from cpython.buffer cimport (PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_FORMAT,
                             PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer)
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.float cimport DBL_MAX, DBL_MIN, FLT_MAX, FLT_MIN
from libc.math cimport INFINITY, fabs, fabsf, pow, powf
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


cdef inline Py_ssize_t _scratch_size(Py_ssize_t n_channels, Py_ssize_t tile,
                                     bint channels_last) noexcept nogil:
    return 2 * _tile_area(n_channels, tile, channels_last) + _LINE_SLACK


def scratch_size(Py_ssize_t n_channels, Py_ssize_t tile, bint channels_last):
    """Scratch elements one thread needs for tiles of ``tile`` pixels (or positions): its
    two areas, and the slack for starting them on a cache line wherever the row starts."""
    return _scratch_size(n_channels, tile, channels_last)


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
    if scratch_rows < num_threads or scratch_len < _scratch_size(n_ch, tile, channels_last):
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


cdef floating* _new_mixer(const floating* gamma, Py_ssize_t n_ch, bint channels_last,
                         void** block) except NULL:
    # gamma (n_ch, n_ch) as the tile's mixer reads it: packed in panels (channels_last) or
    # transposed (channels_first), in C memory that starts on a cache line (the GEMM loads
    # every vector of the panels once per block of pixels; at 16-48 bytes past a line
    # every AVX-512 load straddles two). *block receives what the caller frees. Made in C,
    # not as a NumPy array: the array's placement and alignment took microseconds per call.
    cdef Py_ssize_t i, j
    cdef floating* m
    block[0] = malloc(_mixer_size(<floating> 0, n_ch, channels_last) * sizeof(floating) + _LINE)
    if block[0] == NULL:
        raise MemoryError()
    m = <floating*> _line_start(block[0])
    if channels_last:
        _simd.rows_pack(gamma, n_ch, m)
    else:
        for i in range(n_ch):
            for j in range(n_ch):
                m[i * n_ch + j] = gamma[j * n_ch + i]
    return m


def _mixer(const floating[:, ::1] gamma, bint channels_last):
    """``(offset, values)``: the kernels' mixer for ``gamma`` (see _new_mixer), its
    distance in bytes from a cache line boundary and a copy of its elements (for tests)."""
    cdef void* block = NULL
    cdef floating* m = _new_mixer(&gamma[0, 0], gamma.shape[0], channels_last, &block)
    try:
        values = np.asarray(<floating[:_mixer_size(<floating> 0, gamma.shape[0],
                                                   channels_last)]> m).copy()
        return <uintptr_t> m % _LINE, values
    finally:
        free(block)


cdef Tile _make_tile(const floating* beta, const floating* gamma, Py_ssize_t n_ch,
                     const floating* mixer) noexcept nogil:
    cdef Tile tl
    tl.beta = beta
    tl.gamma = gamma
    tl.mixer = mixer
    tl.n_ch = n_ch
    tl.fused = _simd.fused_rows_supported(<floating> 0, n_ch)
    tl.fused_wide = not tl.fused and _simd.fused_wide_supported(<floating> 0, n_ch)
    tl.fused_planes = _simd.fused_planes_supported(<floating> 0, n_ch)
    tl.slab_norm = _simd.mix_slab_norm_supported(<floating> 0, n_ch)
    return tl


cdef const floating* _tile_mixer(const floating* gamma, Py_ssize_t n_ch, bint channels_last,
                                 void** block) except NULL:
    # the mixer a layout's tiles read: gamma itself where the channels_last mixers share
    # lanes between pixels (they read gamma unpacked), else _new_mixer's (freed by the caller)
    block[0] = NULL
    if channels_last and _simd.mix_rows_shared(<floating> 0, n_ch):
        return gamma
    return _new_mixer(gamma, n_ch, channels_last, block)


cdef Py_ssize_t _tiles_channels_last(
        const floating* x,      # IN  (n_pixels, n_ch)
        floating* out,          # OUT (n_pixels, n_ch); may be x
        const Tile* tl, Py_ssize_t n_pixels, Py_ssize_t tile,
        floating* scratch,      # SCRATCH thread k's at scratch + k * scratch_stride
        Py_ssize_t scratch_stride,
        unsigned char* flags,   # OUT one per tile: 1 = careful path
        const Settings* s, int num_threads) noexcept nogil:
    # every tile of the run, num_threads threads; returns the number of tiles flagged
    cdef Py_ssize_t n_ch = tl.n_ch, area = _tile_area(n_ch, tile, True)
    cdef Py_ssize_t n_tiles = (n_pixels + tile - 1) // tile, t, start, n_flagged = 0
    cdef floating* work
    cdef unsigned char flag
    with parallel(num_threads=num_threads):
        work = <floating*> _line_start(scratch + threadid() * scratch_stride)
        for t in prange(n_tiles, schedule="static"):
            start = t * tile
            flag = _gdn_tile_channels_last(x + start * n_ch, out + start * n_ch, tl, work,
                                           work + area, min(tile, n_pixels - start), s, True)
            flags[t] = flag
            n_flagged += flag
    return n_flagged


# channels_first blocks of one image: [0, head) if head > 0, then tiles of `tile`. `head`
# here is _used_head's: 0 or less than n_pos.

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


cdef Py_ssize_t _tiles_channels_first(
        const floating* x,      # IN  (n_batch, n_ch, n_pos)
        floating* out,          # OUT like x; may be x
        const Tile* tl, Py_ssize_t n_batch, Py_ssize_t n_pos, Py_ssize_t tile,
        Py_ssize_t head,        # _used_head's
        floating* scratch, Py_ssize_t scratch_stride, unsigned char* flags,
        const Settings* s, int num_threads) noexcept nogil:
    # as _tiles_channels_last; tile t is block t % n_blocks of image t // n_blocks
    cdef Py_ssize_t n_ch = tl.n_ch, area = _tile_area(n_ch, tile, False)
    cdef Py_ssize_t n_blocks = _n_blocks(n_pos, tile, head), n_tiles = n_batch * n_blocks
    cdef Py_ssize_t t, b, k, at, n_flagged = 0
    cdef floating* work
    cdef unsigned char flag
    with parallel(num_threads=num_threads):
        work = <floating*> _line_start(scratch + threadid() * scratch_stride)
        for t in prange(n_tiles, schedule="static"):
            b = t // n_blocks
            k = t - b * n_blocks
            at = b * n_ch * n_pos + _block_start(k, tile, head)
            flag = _gdn_tile_channels_first(x + at, out + at, tl, work, work + area,
                                            _block_length(k, n_pos, tile, head), n_pos, n_pos,
                                            s, True)
            flags[t] = flag
            n_flagged += flag
    return n_flagged


cdef Py_ssize_t _used_head(Py_ssize_t n_pos, Py_ssize_t tile, Py_ssize_t head) except -1:
    # the head block of an image of n_pos positions: `head`, or none (0) if it would be
    # the whole image
    if tile < 1 or head < 0 or head >= tile:
        raise ValueError("need tile >= 1 and 0 <= head < tile")
    return head if head < n_pos else 0


def channels_first_blocks(Py_ssize_t n_positions, Py_ssize_t tile, Py_ssize_t head):
    """Blocks (tiles) per image of :func:`gdn_channels_first` for these arguments."""
    return _n_blocks(n_positions, tile, _used_head(n_positions, tile, head))


def gdn_channels_last(const floating[:, ::1] x,        # IN  (n_pixels, n_channels)
                      const floating[::1] beta,        # IN  (n_channels,)
                      const floating[:, ::1] gamma,    # IN  (n_channels, n_channels)
                      floating[:, ::1] out,            # OUT (n_pixels, n_channels); may be x
                      floating[:, ::1] scratch,        # SCRATCH (num_threads, scratch_size)
                      unsigned char[::1] flags,        # OUT (n_tiles,): 1 = careful path
                      Py_ssize_t tile, double alpha, double epsilon,
                      bint inverse, bint rectify, int num_threads):
    """GDN over rows of a (pixels, channels) matrix, ``tile`` pixels per work unit, with
    the caller's scratch and flags (:func:`run` makes its own; this entry is for tests).

    Returns the number of tiles flagged in ``flags``: they hold a pixel whose pool
    overflowed or underflowed, and were left unwritten for the careful path.
    """
    cdef Py_ssize_t n_pixels = x.shape[0], n_ch = x.shape[1], n_flagged
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    cdef void* block = NULL
    cdef Tile tl
    if out.shape[0] != n_pixels or out.shape[1] != n_ch:
        raise ValueError("out must have the shape of x")
    if n_pixels == 0 or n_ch == 0:
        return 0
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], scratch.shape[1], flags.shape[0],
                  (n_pixels + tile - 1) // tile, num_threads, True)
    tl = _make_tile(&beta[0], &gamma[0, 0], n_ch, _tile_mixer(&gamma[0, 0], n_ch, True, &block))
    try:
        with nogil:
            n_flagged = _tiles_channels_last(&x[0, 0], &out[0, 0], &tl, n_pixels, tile,
                                             &scratch[0, 0], scratch.shape[1], &flags[0], &s,
                                             num_threads)
    finally:
        free(block)
    return n_flagged


def gdn_channels_first(const floating[:, :, ::1] x,    # IN  (n_batch, n_channels, n_positions)
                       const floating[::1] beta,       # IN  (n_channels,)
                       const floating[:, ::1] gamma,   # IN  (n_channels, n_channels)
                       floating[:, :, ::1] out,        # OUT like x; may be x
                       floating[:, ::1] scratch,       # SCRATCH (num_threads, scratch_size)
                       unsigned char[::1] flags,       # OUT (n_tiles,): 1 = careful path
                       Py_ssize_t tile, Py_ssize_t head, double alpha, double epsilon,
                       bint inverse, bint rectify, int num_threads):
    """GDN over (batch, channels, positions) blocks, ``tile`` positions per work unit,
    with the caller's scratch and flags (:func:`run` makes its own; for tests).

    Each image's positions are split into ``n_blocks = channels_first_blocks(n_positions,
    tile, head)`` blocks: the first ``head`` positions (if ``0 < head < n_positions``),
    then blocks of ``tile``. Tile ``t`` is block ``t % n_blocks`` of image ``t //
    n_blocks``. Returns the number of flagged tiles, as :func:`gdn_channels_last`.
    """
    cdef Py_ssize_t n_batch = x.shape[0], n_ch = x.shape[1], n_pos = x.shape[2], n_flagged
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    cdef void* block = NULL
    cdef Tile tl
    if out.shape[0] != n_batch or out.shape[1] != n_ch or out.shape[2] != n_pos:
        raise ValueError("out must have the shape of x")
    if n_batch == 0 or n_ch == 0 or n_pos == 0:
        return 0
    head = _used_head(n_pos, tile, head)
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], scratch.shape[1], flags.shape[0],
                  n_batch * _n_blocks(n_pos, tile, head), num_threads, False)
    tl = _make_tile(&beta[0], &gamma[0, 0], n_ch, _tile_mixer(&gamma[0, 0], n_ch, False, &block))
    try:
        with nogil:
            n_flagged = _tiles_channels_first(&x[0, 0, 0], &out[0, 0, 0], &tl, n_batch, n_pos,
                                              tile, head, &scratch[0, 0], scratch.shape[1],
                                              &flags[0], &s, num_threads)
    finally:
        free(block)
    return n_flagged


# ---------------------------------------------------------------------------------------
# A whole call: work units, scratch, the tiles and the careful path, from whole arrays

# Work-unit sizes. They depend only on the shape (and, for channels_first, where the
# input starts relative to a cache line), never on the thread count or the instruction
# set; no result depends on them, so results are identical for any number of threads.

cdef inline Py_ssize_t _tile_pixels(Py_ssize_t n_ch) noexcept nogil:
    # Pixels per channels_last tile. Below 64 channels small tiles win: each tile's passes
    # (f(x), mix, normalization) then stay in L1 (measured at C = 16: tiles of 64 pixels
    # 1.2x faster than 512; at C = 1-4 tiles of about 1024 elements were best). From 64
    # channels the mix is GEMM-bound and longer tiles keep the packed gamma in use. Below
    # 64 channels a tile is a multiple of 8 pixels: the one-pass kernels work in groups of
    # up to 8 or 12 pixels, and a group cut short by the tile's end costs nearly a whole
    # one (with groups of 8 transposed pixels, AVX2 at C = 9-12, 1 thread: 5-8% faster
    # than tiles of 1024 // C pixels; within 2% at most other channel counts below 32,
    # side by side).
    if n_ch < 64:
        return max(32, 1024 // n_ch // 8 * 8)
    return 240 if n_ch <= 96 else 512


cdef inline Py_ssize_t _tile_positions(Py_ssize_t n_ch) noexcept nogil:
    # Spatial positions per channels_first tile (one image's block of positions): 256
    # measured best or within noise of the best from 3 to 320 channels.
    return 256


cdef inline Py_ssize_t _head_positions(const void* x, Py_ssize_t itemsize,
                                       Py_ssize_t tile) noexcept nogil:
    # Positions in the first channels_first block of each image: as many as bring the next
    # block's start in the first channel of the first image onto a cache line (0 when it
    # is on one). The blocks' vectors of x then do not straddle two lines where the planes
    # are whole lines long (power-of-two images). Side by side on the same arrays, x 16 or
    # 32 bytes past a line (NumPy places large arrays 16 bytes past one), float32: AVX-512
    # 4-10% faster at C = 32-128 and 1-4% at 192 (1 and 2 threads); AVX2 5-11% at C =
    # 16-32 with x 16 bytes past a line. Results do not depend on it: every position is
    # computed alone.
    cdef Py_ssize_t head = ((_LINE - <Py_ssize_t> (<uintptr_t> x % _LINE)) % _LINE) // itemsize
    return head if head < tile else 0   # tile <= positions: a head is never a whole image


cdef struct Call:
    const void* x           # channels_last (n_units, n_ch); channels_first (n_batch, n_ch, n_units)
    void* out               # like x; x itself, or not overlapping it
    const void* beta        # (n_ch,)
    const void* gamma       # (n_ch, n_ch)
    Py_ssize_t itemsize     # 4: float32, 8: float64
    Py_ssize_t n_batch      # channels_last: 1
    Py_ssize_t n_ch
    Py_ssize_t n_units      # pixels (channels_last) or positions per image
    bint channels_last


cdef Py_ssize_t _run_tiles(floating tag, const Call* c, Py_ssize_t tile, Py_ssize_t head,
                           unsigned char* flags, const Settings* s,
                           int num_threads) except -1:
    # the tiles of a call, with its mixer and each thread's scratch made here; returns the
    # number of tiles flagged
    cdef void* mixer_block = NULL
    cdef void* scratch_block = NULL
    cdef Py_ssize_t stride = _scratch_size(c.n_ch, tile, c.channels_last), n_flagged
    cdef const floating* gamma = <const floating*> c.gamma
    cdef Tile tl = _make_tile(<const floating*> c.beta, gamma, c.n_ch,
                              _tile_mixer(gamma, c.n_ch, c.channels_last, &mixer_block))
    try:
        scratch_block = malloc(num_threads * stride * sizeof(floating))
        if scratch_block == NULL:
            raise MemoryError()
        with nogil:
            if c.channels_last:
                n_flagged = _tiles_channels_last(
                    <const floating*> c.x, <floating*> c.out, &tl, c.n_units, tile,
                    <floating*> scratch_block, stride, flags, s, num_threads)
            else:
                n_flagged = _tiles_channels_first(
                    <const floating*> c.x, <floating*> c.out, &tl, c.n_batch, c.n_units,
                    tile, head, <floating*> scratch_block, stride, flags, s, num_threads)
    finally:
        free(scratch_block)
        free(mixer_block)
    return n_flagged


cdef _call(const Call* c, object x, object beta, object gamma, object out, const Settings* s,
           Py_ssize_t num_threads):
    # the work units of a call, its tiles, and the careful path for the tiles flagged
    cdef Py_ssize_t tile, head = 0, n_tiles, n_flagged
    cdef unsigned char* flags
    cdef unsigned char[::1] flag_view
    if c.channels_last:
        tile = min(_tile_pixels(c.n_ch), c.n_units)
        n_tiles = (c.n_units + tile - 1) // tile
    else:
        tile = min(_tile_positions(c.n_ch), c.n_units)
        head = _used_head(c.n_units, tile, _head_positions(c.x, c.itemsize, tile))
        n_tiles = c.n_batch * _n_blocks(c.n_units, tile, head)
    num_threads = max(1, min(num_threads, n_tiles))
    flags = <unsigned char*> malloc(n_tiles)
    if flags == NULL:
        raise MemoryError()
    try:
        if c.itemsize == 4:
            n_flagged = _run_tiles(<float> 0, c, tile, head, flags, s, <int> num_threads)
        else:
            n_flagged = _run_tiles(<double> 0, c, tile, head, flags, s, <int> num_threads)
        if n_flagged:
            # some pools overflowed or underflowed: those tiles were left unwritten
            from cgdn._careful import rescue_tiles
            if c.channels_last:
                shape = (c.n_units, c.n_ch)
            else:
                shape = (c.n_batch, c.n_ch, c.n_units)
            flagged = np.empty(n_tiles, dtype=np.uint8)
            flag_view = flagged
            memcpy(&flag_view[0], flags, n_tiles)
            rescue_tiles(sys.modules[__name__], x.reshape(shape), out.reshape(shape),
                         flagged, tile, head, c.channels_last, beta, gamma,
                         inverse=bool(s.inverse), rectify=bool(s.rectify), alpha=s.alpha,
                         epsilon=s.epsilon)
    finally:
        free(flags)
    return out


cdef int _real_format(const Py_buffer* view) noexcept:
    # the element size of a buffer of native float32 or float64 ("f", "d"), else 0
    if view.format == NULL or view.format[0] == 0 or view.format[1] != 0:
        return 0
    if view.format[0] == b'f' and view.itemsize == 4:
        return 4
    if view.format[0] == b'd' and view.itemsize == 8:
        return 8
    return 0


cdef int _status(const floating* values, Py_ssize_t n) noexcept nogil:
    # 0 if every value is finite and >= 0; 1 if one is NaN or infinite; 2 if one is
    # negative (and all are finite)
    cdef Py_ssize_t k
    cdef floating v
    cdef int status = 0
    for k in range(n):
        v = values[k]
        if v - v != 0:      # inf or NaN
            return 1
        if v < 0:
            status = 2
    return status


cdef int _values_status(const Py_buffer* view) noexcept nogil:
    # parameter_status of a float32 or float64 buffer
    if view.itemsize == 4:
        return _status(<const float*> view.buf, view.len // 4)
    return _status(<const double*> view.buf, view.len // 8)


cdef object _refuse(bint plain, str message):
    # _arrays' answer to arrays outside what it takes: None for apply_plain (the general
    # path decides), a ValueError naming the problem for run's direct callers
    if plain:
        return None
    raise ValueError(message)


cdef object _arrays(object x, object beta, object gamma, object out, bint data_last,
                    const Settings* s, Py_ssize_t num_threads, bint plain):
    # GDN of whole arrays. With `plain` (apply_plain): None wherever the arrays are not
    # the plain case (the general path decides, converts or raises); without (run): a
    # ValueError instead. out None: a new array (plain only).
    cdef Py_buffer xv, bv, gv, ov
    cdef int held = 0, size
    cdef Py_ssize_t i
    cdef uintptr_t x0, x1, o0, o1
    cdef Call c
    try:
        try:
            PyObject_GetBuffer(x, &xv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            held = 1
            PyObject_GetBuffer(beta, &bv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            held = 2
            PyObject_GetBuffer(gamma, &gv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            held = 3
        except (BufferError, ValueError, TypeError):
            if plain:
                return None
            raise
        size = _real_format(&xv)
        c.channels_last = data_last or xv.ndim == 2
        if (xv.ndim < 2 or xv.len == 0 or size == 0 or bv.ndim != 1 or gv.ndim != 2
                or _real_format(&bv) != size or _real_format(&gv) != size):
            return _refuse(plain, "x, beta and gamma must be float32 or float64 arrays of "
                                  "one dtype, x of rank >= 2 and not empty")
        c.n_ch = xv.shape[xv.ndim - 1] if c.channels_last else xv.shape[1]
        if bv.shape[0] != c.n_ch or gv.shape[0] != c.n_ch or gv.shape[1] != c.n_ch:
            return _refuse(plain, "beta and gamma must match the channel count")
        if plain and (_values_status(&bv) or _values_status(&gv)):
            return None
        if out is None:
            if not plain:
                raise ValueError("out is required")
            out = np.empty_like(x)
        try:
            PyObject_GetBuffer(out, &ov, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
            held = 4
        except (BufferError, ValueError, TypeError):
            if plain:
                return None
            raise
        x0 = <uintptr_t> xv.buf
        x1 = x0 + xv.len
        o0 = <uintptr_t> ov.buf
        o1 = o0 + ov.len
        if (_real_format(&ov) != size or ov.ndim != xv.ndim
                or (o0 != x0 and o0 < x1 and x0 < o1)):
            return _refuse(plain, "out must have x's dtype and shape, and be x or not "
                                  "overlap it")
        for i in range(xv.ndim):
            if ov.shape[i] != xv.shape[i]:
                return _refuse(plain, "out must have the shape of x")
        c.x = xv.buf
        c.out = ov.buf
        c.beta = bv.buf
        c.gamma = gv.buf
        c.itemsize = size
        c.n_batch = 1 if c.channels_last else xv.shape[0]
        c.n_units = xv.len // size // c.n_ch // c.n_batch
        return _call(&c, x, beta, gamma, out, s, num_threads)
    finally:
        if held >= 4:
            PyBuffer_Release(&ov)
        if held >= 3:
            PyBuffer_Release(&gv)
        if held >= 2:
            PyBuffer_Release(&bv)
        if held >= 1:
            PyBuffer_Release(&xv)


def run(x, beta, gamma, out, bint channels_last, double alpha, double epsilon, bint inverse,
        bint rectify, Py_ssize_t num_threads):
    """GDN of ``x`` into ``out`` with checked arguments, as :func:`cgdn.apply_gdn` runs it.

    ``x``, ``beta`` (C,), ``gamma`` (C, C) and ``out`` (x's shape; ``x`` itself or not
    overlapping it) are C-contiguous arrays of one dtype, float32 or float64; ``x`` is
    (..., C) if ``channels_last`` (or of rank 2), else (N, C, ...). Picks the work units
    (tiles of pixels or of positions), makes the mixer and each thread's scratch, runs
    the tiles on ``num_threads`` threads (at most one per tile) and finishes flagged tiles
    on the careful path. Returns ``out``.
    """
    if num_threads < 1:
        raise ValueError("num_threads must be >= 1")
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    return _arrays(x, beta, gamma, out, channels_last, &s, num_threads, False)


cdef object _ndarray = np.ndarray
# num_threads=None is capped at the CPU count unless OMP_NUM_THREADS is set (0: no cap);
# libgomp reads OMP_NUM_THREADS once, at load: so does this module.
cdef int _default_cap = 0 if os.environ.get("OMP_NUM_THREADS") else (os.cpu_count() or 1)


cdef int _default_threads() noexcept nogil:
    cdef int n = omp_get_max_threads()
    if _default_cap > 0 and n > _default_cap:
        n = _default_cap
    return n if n > 1 else 1


def default_num_threads():
    """The thread count of ``num_threads=None``: the calling thread's OpenMP default
    (``OMP_NUM_THREADS``, threadpoolctl's OpenMP limits), capped at the CPU count when
    ``OMP_NUM_THREADS`` was unset when cgdn was imported (libgomp reads it once, then)."""
    return _default_threads()


def apply_plain(inputs, beta, gamma, inverse, rectify, alpha, epsilon, data_format, out,
                num_threads):
    """:func:`cgdn.apply_gdn` in one call for its plain case, else None.

    Plain: ``inputs``, ``beta``, ``gamma`` (and ``out`` if given) are ndarrays (not
    subclasses), C-contiguous, of one native dtype, float32 or float64, with the shapes
    apply_gdn asks for; ``inputs`` not empty, ``beta`` and ``gamma`` finite and >= 0;
    ``out`` writeable and ``inputs`` itself or not overlapping it; ``inverse`` and
    ``rectify`` bools, ``alpha`` and ``epsilon`` finite positive floats, ``data_format``
    one of the two names, ``num_threads`` None or a positive int. The result is what
    apply_gdn's general path gives (the same work units and kernels); anything else
    returns None, for that path to convert, copy or raise.
    """
    cdef Settings s
    cdef bint data_last
    cdef Py_ssize_t threads
    if type(inputs) is not _ndarray or type(beta) is not _ndarray or \
            type(gamma) is not _ndarray or (out is not None and type(out) is not _ndarray):
        return None
    if not ((inverse is True or inverse is False) and (rectify is True or rectify is False)
            and type(alpha) is float and type(epsilon) is float):
        return None
    if not (0 < <double> alpha < INFINITY and 0 < <double> epsilon < INFINITY):
        return None
    if type(data_format) is not str:
        return None
    if data_format == "channels_last":
        data_last = True
    elif data_format == "channels_first":
        data_last = False
    else:
        return None
    if num_threads is None:
        threads = _default_threads()
    elif type(num_threads) is int and 0 < num_threads <= 1 << 20:
        threads = num_threads
    else:
        return None
    s = _make_settings(alpha, epsilon, inverse, rectify)
    return _arrays(inputs, beta, gamma, out, data_last, &s, threads, True)


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
    w = np.empty(_scratch_size(n_ch, n, channels_last), dtype=dtype)
    area = _tile_area(n_ch, n, channels_last)
    tmp = np.empty(n * n_ch, dtype=dtype)
    tl = _make_tile(&beta[0], &gamma[0, 0], n_ch,
                    _tile_mixer(&gamma[0, 0], n_ch, channels_last, &block))
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
