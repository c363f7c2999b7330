# Compiler directives (boundscheck, wraparound, cdivision, ...) are set once, in setup.py.
#
# cgdn's core, compiled once, without instruction-set flags: the Python boundary of the
# kernels (the plain case's checks, the work units, each thread's scratch, the careful
# path's hand-off, the density functions), the OpenMP threads over tiles, and the probes
# (CPU features, OpenMP, thread policy). What runs inside a tile is a kernel variant's
# (cgdn/simd/variant.c, compiled once per instruction set and dtype): a const table of
# C functions (cgdn/simd/table.h) that the tile loops here call once per tile.
# cgdn._isa picks the variant this CPU runs best; each Variant object below carries one
# variant's tables and the entry points that run on them.
#
# cgdn.apply_gdn enters through Variant.apply_plain (its plain case checked here in one
# call, microseconds cheaper than in Python) or, after its general checks and
# conversions, through Variant.run; both pick the work units here and hand the tiles
# C-contiguous, same-dtype buffers only, so the tile kernels cannot fail: the loops are
# ``noexcept nogil`` and run ``prange`` over tiles of pixels. No BLAS runs inside the
# kernels, so results never depend on a BLAS library's thread settings.
#
# gamma convention: gamma[j, i] weighs input channel j in the pool of output channel i
# (TensorFlow's orientation), i.e. pool = f(x) @ gamma per pixel.

import os

import numpy as np

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)
from cython cimport floating
from libc.math cimport INFINITY, copysign, exp, fabs, fmax, isfinite, log, pow
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from cgdn._openmp cimport CGDN_OPENMP_ENABLED, omp_get_max_threads

cdef extern from "pool.h" nogil:
    ctypedef void (*cgdn_item_fn)(void* ctx, Py_ssize_t item, int slot) noexcept nogil
    void cgdn_pool_run(cgdn_item_fn fn, void* ctx, Py_ssize_t n_items, int n_threads)
    long long cgdn_pool_stats[4]

cdef extern from "status.h" nogil:
    int cgdn_status_f32(const float* values, Py_ssize_t n, double* largest)
    int cgdn_status_f64(const double* values, Py_ssize_t n, double* largest)

cdef extern from "simd/cpu.h" nogil:
    int cgdn_cpu_supports(const char* isa)

cdef extern from "simd/vec.h" nogil:
    # the normalization modes (shared by every variant)
    int CGDN_GDN_SQRT, CGDN_IGDN_SQRT, CGDN_GDN_ONE, CGDN_IGDN_ONE

cdef extern from *:
    """
    #ifndef CGDN_DEBUG_BUILD
    #define CGDN_DEBUG_BUILD 0
    #endif
    """
    bint CGDN_DEBUG_BUILD

# Whether this module was built with CGDN_CYTHON_DEBUG=1 (bounds checks on).
DEBUG_BUILD = bool(CGDN_DEBUG_BUILD)

# A cache line, in bytes: each thread's scratch and the mixer start on one (NumPy and
# malloc place blocks 16, 32 or 48 bytes past a line, where every AVX-512 vector load
# straddles two lines); and the slack, in elements, that a scratch row keeps for moving
# its start onto a line.
cdef enum:
    _LINE = 64
    _LINE_SLACK = 16


cdef inline void* _line_start(void* p) noexcept nogil:
    # the first cache line boundary at or after p
    return <void*> ((<uintptr_t> p + (_LINE - 1)) & ~(<uintptr_t> (_LINE - 1)))


cdef inline Py_ssize_t _whole_lines(Py_ssize_t n_bytes) noexcept nogil:
    # n_bytes rounded up to whole cache lines
    return (n_bytes + _LINE - 1) // _LINE * _LINE


cdef inline const cgdn_kernels* kernels_of(const cgdn_variant* v,
                                           Py_ssize_t itemsize) noexcept nogil:
    # a variant's table for float32 (itemsize 4) or float64 (8)
    return v.f32 if itemsize == 4 else v.f64


cdef Py_ssize_t tile_area(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                          bint channels_last) noexcept nogil:
    # elements of one of a tile's two scratch areas (f, then pool), padding included
    cdef Py_ssize_t lanes = v.f32.lanes
    if channels_last:
        return tile * n_ch + CGDN_TILE_PAD
    # channels_first rows are whole vectors long (slab_stride in gemm.h): round up to this
    # variant's widest vector, float32's
    return n_ch * ((tile + lanes - 1) // lanes * lanes) + CGDN_TILE_PAD


cdef Py_ssize_t scratch_elements(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                                 bint channels_last) noexcept nogil:
    # scratch elements one thread needs: its two areas, and the slack for starting them
    # on a cache line wherever its row starts
    return 2 * tile_area(v, n_ch, tile, channels_last) + _LINE_SLACK


cdef cgdn_settings make_settings(double alpha, double epsilon, bint inverse, bint rectify):
    cdef cgdn_settings s
    s.pool_mode = (CGDN_POOL_SQUARE if alpha == 2.0 else
                   (CGDN_POOL_ABS if alpha == 1.0 else CGDN_POOL_POW))
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
# Tiles

cdef void* new_mixer(const cgdn_kernels* k, const void* gamma, Py_ssize_t n_ch,
                     bint channels_last, void** block) except NULL:
    # gamma as the tiles' mixer reads it, packed in panels (channels_last) or transposed
    # (channels_first), made by the variant in C memory that starts on a cache line (the
    # GEMM loads every vector of the panels once per block of pixels; at 16-48 bytes past
    # a line every AVX-512 load straddles two). *block receives what the caller frees.
    # Made in C, not as a NumPy array: the array's placement took microseconds per call.
    cdef void* m
    block[0] = malloc(k.mixer_size(n_ch, channels_last) * k.itemsize + _LINE)
    if block[0] == NULL:
        raise MemoryError()
    m = _line_start(block[0])
    k.make_mixer(gamma, n_ch, channels_last, m)
    return m


cdef const void* tile_mixer(const cgdn_kernels* k, const void* gamma, Py_ssize_t n_ch,
                            bint channels_last, void** block) except NULL:
    # the mixer a layout's tiles read: gamma itself where the channels_last mixers share
    # lanes between pixels (they read gamma unpacked; *block is NULL), else new_mixer's
    block[0] = NULL
    if channels_last and k.mixer_shared(n_ch):
        return gamma
    return new_mixer(k, gamma, n_ch, channels_last, block)


cdef cgdn_tile make_tile(const cgdn_kernels* k, const void* beta, const void* gamma,
                         Py_ssize_t n_ch, const void* mixer,
                         double gamma_max=INFINITY) noexcept nogil:
    # gamma_max: the largest entry of gamma if known (it spares plan a pass over gamma)
    cdef cgdn_tile tl
    tl.beta = beta
    tl.gamma = gamma
    tl.mixer = mixer
    tl.n_ch = n_ch
    tl.gamma_max = gamma_max
    k.plan(&tl)
    return tl


cdef struct TileRun:
    # what the tiles of one call share (cgdn_pool_run hands out the tiles)
    const cgdn_kernels* k
    const char* x
    char* out
    const cgdn_tile* tl
    const cgdn_settings* s
    char* scratch             # slot k's scratch at scratch + k * scratch_bytes
    Py_ssize_t scratch_bytes
    Py_ssize_t area           # bytes of one of a tile's two scratch areas
    Py_ssize_t itemsize
    Py_ssize_t n_units        # pixels, or positions per image
    Py_ssize_t tile
    Py_ssize_t head
    Py_ssize_t blocks         # tiles per image (channels_first)
    unsigned char* flags


cdef void _tile_last_item(void* ctx, Py_ssize_t t, int slot) noexcept nogil:
    cdef TileRun* r = <TileRun*> ctx
    cdef char* work = <char*> _line_start(r.scratch + slot * r.scratch_bytes)
    cdef Py_ssize_t at = t * r.tile * r.tl.n_ch * r.itemsize
    r.flags[t] = r.k.tile_last(r.x + at, r.out + at, r.tl, work, work + r.area,
                               min(r.tile, r.n_units - t * r.tile), r.s, True)


cdef Py_ssize_t _count_flags(const unsigned char* flags, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t t, n_flagged = 0
    for t in range(n):
        n_flagged += flags[t]
    return n_flagged


cdef Py_ssize_t tiles_channels_last(const cgdn_variant* v, Py_ssize_t itemsize,
                                    const char* x, char* out, const cgdn_tile* tl,
                                    Py_ssize_t n_pixels, Py_ssize_t tile, char* scratch,
                                    Py_ssize_t scratch_stride, unsigned char* flags,
                                    const cgdn_settings* s, int num_threads) noexcept nogil:
    # Every tile of a (n_pixels, n_ch) run into out (may be x), on num_threads threads;
    # slot k's scratch at scratch + k * scratch_stride elements; flags: one per tile,
    # 1 = careful path. Returns the number of tiles flagged.
    cdef TileRun r
    cdef Py_ssize_t n_tiles = (n_pixels + tile - 1) // tile
    r.k = kernels_of(v, itemsize)
    r.x, r.out, r.tl, r.s, r.flags = x, out, tl, s, flags
    r.scratch, r.scratch_bytes = scratch, scratch_stride * itemsize
    r.area = tile_area(v, tl.n_ch, tile, True) * itemsize
    r.itemsize, r.n_units, r.tile = itemsize, n_pixels, tile
    cgdn_pool_run(_tile_last_item, &r, n_tiles, num_threads)
    return _count_flags(flags, n_tiles)


# channels_first blocks of one image: [0, head) if head > 0, then tiles of `tile`. `head`
# here is used_head's: 0 or less than n_pos.

cdef inline Py_ssize_t n_blocks(Py_ssize_t n_pos, Py_ssize_t tile,
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


cdef void _tile_first_item(void* ctx, Py_ssize_t t, int slot) noexcept nogil:
    cdef TileRun* r = <TileRun*> ctx
    cdef char* work = <char*> _line_start(r.scratch + slot * r.scratch_bytes)
    cdef Py_ssize_t b = t // r.blocks, j = t - b * r.blocks
    cdef Py_ssize_t at = (b * r.tl.n_ch * r.n_units + _block_start(j, r.tile, r.head)) * r.itemsize
    r.flags[t] = r.k.tile_first(r.x + at, r.out + at, r.tl, work, work + r.area,
                                _block_length(j, r.n_units, r.tile, r.head), r.n_units,
                                r.n_units, r.s, True)


cdef Py_ssize_t tiles_channels_first(const cgdn_variant* v, Py_ssize_t itemsize,
                                     const char* x, char* out, const cgdn_tile* tl,
                                     Py_ssize_t n_batch, Py_ssize_t n_pos, Py_ssize_t tile,
                                     Py_ssize_t head, char* scratch,
                                     Py_ssize_t scratch_stride, unsigned char* flags,
                                     const cgdn_settings* s, int num_threads) noexcept nogil:
    # as tiles_channels_last over (n_batch, n_ch, n_pos); tile t is block t % n_blocks of
    # image t // n_blocks; head is used_head's
    cdef TileRun r
    r.k = kernels_of(v, itemsize)
    r.x, r.out, r.tl, r.s, r.flags = x, out, tl, s, flags
    r.scratch, r.scratch_bytes = scratch, scratch_stride * itemsize
    r.area = tile_area(v, tl.n_ch, tile, False) * itemsize
    r.itemsize, r.n_units, r.tile, r.head = itemsize, n_pos, tile, head
    r.blocks = n_blocks(n_pos, tile, head)
    cgdn_pool_run(_tile_first_item, &r, n_batch * r.blocks, num_threads)
    return _count_flags(flags, n_batch * r.blocks)


cdef Py_ssize_t used_head(Py_ssize_t n_pos, Py_ssize_t tile, Py_ssize_t head) except -1:
    # the head block of an image of n_pos positions: `head`, or none (0) if it would be
    # the whole image
    if tile < 1 or head < 0 or head >= tile:
        raise ValueError("need tile >= 1 and 0 <= head < tile")
    return head if head < n_pos else 0


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
    # measured best or within noise of the best from 3 to 320 channels on the AVX-512
    # Xeon. From 96 channels, 208: the mix reads a panel of f's rows (slab_stride(n)
    # apart) once per block of output rows, and rows 1 KB apart (256 float32) fall in a
    # quarter of the L1 cache's sets, so a panel of ~100 rows or more no longer stays in
    # L1; 208 (832 bytes, 13 lines) spreads them. AVX2 on the AMD EPYC against the
    # build with 256, float32: 7-13% faster at C = 128-256 on 1 thread, 2-11% on 2,
    # C = 320 neutral (160 about the same as 208, 128 as slow as 256); below 96, 256
    # stays (208: 4% slower at C = 32). Kernel notes, "channels_first tiles".
    return 208 if n_ch >= 96 else 256


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
    double gamma_max        # gamma's largest entry


cdef int _run_tiles(const cgdn_variant* v, const Call* c, Py_ssize_t tile, Py_ssize_t head,
                    Py_ssize_t n_tiles, const cgdn_settings* s, int num_threads) except -1:
    # the tiles of a call, with its mixer and each thread's scratch made here, and the
    # careful path for the tiles flagged
    cdef const cgdn_kernels* k = kernels_of(v, c.itemsize)
    cdef void* mixer_block = NULL
    cdef void* scratch_block = NULL
    cdef unsigned char* flags = NULL
    cdef Py_ssize_t stride = scratch_elements(v, c.n_ch, tile, c.channels_last), n_flagged
    cdef cgdn_tile tl = make_tile(k, c.beta, c.gamma, c.n_ch,
                                  tile_mixer(k, c.gamma, c.n_ch, c.channels_last,
                                             &mixer_block), c.gamma_max)
    try:
        scratch_block = malloc(num_threads * stride * c.itemsize)
        flags = <unsigned char*> malloc(n_tiles)
        if scratch_block == NULL or flags == NULL:
            raise MemoryError()
        with nogil:
            if c.channels_last:
                n_flagged = tiles_channels_last(
                    v, c.itemsize, <const char*> c.x, <char*> c.out, &tl, c.n_units, tile,
                    <char*> scratch_block, stride, flags, s, num_threads)
            else:
                n_flagged = tiles_channels_first(
                    v, c.itemsize, <const char*> c.x, <char*> c.out, &tl, c.n_batch,
                    c.n_units, tile, head, <char*> scratch_block, stride, flags, s,
                    num_threads)
        if n_flagged:
            # some pools overflowed or underflowed: those tiles were left unwritten
            _rescue_tiles(v, c, &tl, s, tile, head, flags, n_tiles, n_flagged,
                          <int> min(num_threads, n_flagged))
    finally:
        free(flags)
        free(scratch_block)
        free(mixer_block)
    return 0


# ---------------------------------------------------------------------------------------
# The careful path
#
# The tile kernels flag a tile holding a pixel whose `beta + pool` is infinite, NaN, zero
# or subnormal in the compute dtype although all of the pixel's inputs are finite (e.g.
# x = 1e30 in float32 squares to inf, and the fast path would return 0 where the answer is
# about 1 / sqrt(gamma)), and leave it unwritten. Such a tile runs again through the same
# kernel arithmetic in three passes (f(x), mix, normalization) into a temporary: its
# in-range pixels are written as a clean run writes them, bit for bit, and the others are
# recomputed in float64 in the log domain,
#     log pool_i = logsumexp_j(log gamma[j, i] + alpha log|x_j|, log beta_i),
# where no term overflows or underflows: every answer that is finite in the math comes out
# finite unless it is beyond the output dtype's range (then +-inf). Flagged tiles were left
# unwritten, so their inputs are intact even in place.

cdef inline double _load(const char* p, Py_ssize_t itemsize) noexcept nogil:
    return (<const float*> p)[0] if itemsize == 4 else (<const double*> p)[0]


cdef void _careful_pixel(const char* x, char* out, Py_ssize_t step, Py_ssize_t itemsize,
                         Py_ssize_t n_ch, const Careful* careful, const cgdn_settings* s,
                         double* work) noexcept nogil:
    # one pixel: channel i of x at x + i * step bytes, of out likewise; work: 2 C doubles
    cdef double* log_x = work                  # log|x_j|, -inf at 0
    cdef double* scaled = work + n_ch          # alpha log|x_j|
    cdef const double* log_gamma
    cdef double v, top, total, log_y
    cdef Py_ssize_t i, j
    for j in range(n_ch):
        v = _load(x + j * step, itemsize)
        if s.rectify and v < 0:
            v = 0.0
        log_x[j] = log(fabs(v))
        scaled[j] = s.alpha * log_x[j]
    for i in range(n_ch):
        log_gamma = careful.log_gamma + i
        top = careful.log_beta[i]
        for j in range(n_ch):
            top = fmax(top, log_gamma[j * n_ch] + scaled[j])
        if not isfinite(top):   # every term -inf (or beta infinite)
            top = 0.0
        total = exp(careful.log_beta[i] - top)
        for j in range(n_ch):
            total += exp(log_gamma[j * n_ch] + scaled[j] - top)
        log_y = s.epsilon * (top + log(total))
        log_y = log_x[i] + (log_y if s.inverse else -log_y)
        v = _load(x + i * step, itemsize)
        v = copysign(exp(log_y), 0.0 if s.rectify and v < 0 else v)
        if itemsize == 4:
            (<float*> (out + i * step))[0] = <float> v   # beyond float32: +-inf
        else:
            (<double*> (out + i * step))[0] = v


cdef Py_ssize_t rescue_bytes(const cgdn_variant* v, Py_ssize_t n_ch, Py_ssize_t tile,
                             bint channels_last, Py_ssize_t itemsize) noexcept nogil:
    # bytes of one thread's work for rescue_tile: the three passes' scratch, the tile's
    # result, 2 C doubles for the careful pixels (and up to 7 bytes to align them)
    return ((scratch_elements(v, n_ch, tile, channels_last) + tile * n_ch) * itemsize
            + 2 * n_ch * sizeof(double) + sizeof(double) - 1)


cdef Py_ssize_t rescue_tile(const cgdn_variant* v, Py_ssize_t itemsize, const char* x,
                            char* out, const cgdn_tile* tl, const cgdn_settings* s,
                            Py_ssize_t n_units, bint channels_last, Py_ssize_t t,
                            Py_ssize_t tile, Py_ssize_t head, char* work,
                            unsigned char* bad, const Careful* careful) noexcept nogil:
    # Tile t of a run over (n_pixels, C) or (N, C, n_positions) (tile and head as in the
    # fast pass; head is used_head's) through the three passes: its in-range pixels
    # written into out, the others computed on the careful path (or, with careful NULL,
    # left unwritten). work: rescue_bytes; bad: a flag per pixel (>= tile), 1 = the
    # pixel's pool is out of range. Returns the tile's pixel count.
    cdef const cgdn_kernels* k = kernels_of(v, itemsize)
    cdef Py_ssize_t n_ch = tl.n_ch, area = tile_area(v, n_ch, tile, channels_last)
    cdef Py_ssize_t scratch = scratch_elements(v, n_ch, tile, channels_last) * itemsize
    cdef char* f = <char*> _line_start(work)
    cdef char* pool = f + area * itemsize
    cdef char* tmp = work + scratch
    # the doubles on an 8-byte boundary (after a float32 result of odd length they were
    # not: undefined behaviour, which UBSan reported)
    cdef double* logs = <double*> ((<uintptr_t> (tmp + tile * n_ch * itemsize)
                                    + sizeof(double) - 1) & ~(<uintptr_t> (sizeof(double) - 1)))
    cdef Py_ssize_t blocks, b, start, n, i, j, at, step, stride = 0
    if channels_last:
        start = t * tile
        n = min(tile, n_units - start)
        at = start * n_ch * itemsize
        k.tile_last(x + at, tmp, tl, f, pool, n, s, False)
        step = itemsize
    else:
        blocks = n_blocks(n_units, tile, head)
        b = t // blocks
        start = _block_start(t - b * blocks, tile, head)
        n = _block_length(t - b * blocks, n_units, tile, head)
        at = (b * n_ch * n_units + start) * itemsize
        k.tile_first(x + at, tmp, tl, f, pool, n, n_units, n, s, False)
        step = n_units * itemsize
        stride = (n + k.lanes - 1) // k.lanes * k.lanes    # the pool's rows (slab_stride)
    for j in range(n):
        if channels_last:
            bad[j] = k.pixel_bad(x + at + j * n_ch * itemsize, 1,
                                 pool + j * n_ch * itemsize, 1, tl, s)
        else:
            bad[j] = k.pixel_bad(x + at + j * itemsize, n_units, pool + j * itemsize,
                                 stride, tl, s)
        if bad[j]:
            if careful != NULL:
                _careful_pixel(x + at + (j * n_ch * itemsize if channels_last else
                                         j * itemsize),
                               out + at + (j * n_ch * itemsize if channels_last else
                                           j * itemsize),
                               step, itemsize, n_ch, careful, s, logs)
        elif channels_last:
            memcpy(out + at + j * n_ch * itemsize, tmp + j * n_ch * itemsize,
                   n_ch * itemsize)
        else:
            for i in range(n_ch):
                memcpy(out + at + i * step + j * itemsize, tmp + (i * n + j) * itemsize,
                       itemsize)
    return n


cdef struct RescueRun:
    const cgdn_variant* v
    const Call* c
    const cgdn_tile* tl
    const cgdn_settings* s
    Py_ssize_t tile
    Py_ssize_t head
    const Py_ssize_t* tiles   # the flagged tiles
    char* work                # slot k's at work + k * each
    Py_ssize_t each
    const Careful* careful


cdef void _rescue_item(void* ctx, Py_ssize_t i, int slot) noexcept nogil:
    cdef RescueRun* r = <RescueRun*> ctx
    cdef char* work = r.work + slot * r.each
    rescue_tile(r.v, r.c.itemsize, <const char*> r.c.x, <char*> r.c.out, r.tl, r.s,
                r.c.n_units, r.c.channels_last, r.tiles[i], r.tile, r.head, work,
                <unsigned char*> work + r.each - r.tile, r.careful)


cdef int _rescue_tiles(const cgdn_variant* v, const Call* c, const cgdn_tile* tl,
                       const cgdn_settings* s, Py_ssize_t tile, Py_ssize_t head,
                       const unsigned char* flags, Py_ssize_t n_tiles, Py_ssize_t n_flagged,
                       int num_threads) except -1:
    # every flagged tile through rescue_tile, on num_threads threads
    cdef Py_ssize_t n_ch = c.n_ch, i, j, t
    cdef RescueRun r
    cdef Careful careful
    cdef double* logs = <double*> malloc((n_ch * n_ch + n_ch) * sizeof(double))
    cdef Py_ssize_t* tiles = <Py_ssize_t*> malloc(n_flagged * sizeof(Py_ssize_t))
    cdef void* block = NULL
    # each slot's work in cache lines of its own (threads writing one line slow each
    # other down)
    r.each = _whole_lines(rescue_bytes(v, n_ch, tile, c.channels_last, c.itemsize) + tile)
    block = malloc(num_threads * r.each + _LINE)
    r.work = <char*> _line_start(block)
    try:
        if logs == NULL or tiles == NULL or block == NULL:
            raise MemoryError()
        for i in range(n_ch):
            logs[n_ch * n_ch + i] = log(_load(<const char*> c.beta + i * c.itemsize,
                                              c.itemsize))
            for j in range(n_ch):
                logs[i * n_ch + j] = log(_load(<const char*> c.gamma
                                               + (i * n_ch + j) * c.itemsize, c.itemsize))
        careful.log_gamma = logs
        careful.log_beta = logs + n_ch * n_ch
        i = 0
        for t in range(n_tiles):
            if flags[t]:
                tiles[i] = t
                i += 1
        r.v, r.c, r.tl, r.s, r.tile, r.head = v, c, tl, s, tile, head
        r.tiles, r.careful = tiles, &careful
        with nogil:
            cgdn_pool_run(_rescue_item, &r, n_flagged, num_threads)
    finally:
        free(block)
        free(tiles)
        free(logs)
    return 0


cdef int _real_format(const Py_buffer* view) noexcept:
    # the element size of a buffer of native float32 or float64 ("f", "d"), else 0
    if view.format == NULL or view.format[0] == 0 or view.format[1] != 0:
        return 0
    if view.format[0] == b'f' and view.itemsize == 4:
        return 4
    if view.format[0] == b'd' and view.itemsize == 8:
        return 8
    return 0


cdef int _values_status(const Py_buffer* view, double* largest) noexcept nogil:
    # parameter_status of a float32 or float64 buffer, and its largest value
    if view.itemsize == 4:
        return cgdn_status_f32(<const float*> view.buf, view.len // 4, largest)
    return cgdn_status_f64(<const double*> view.buf, view.len // 8, largest)


cdef object _refuse(bint plain, str message):
    # _arrays' answer to arrays outside what it takes: None for apply_plain (the general
    # path decides), a ValueError naming the problem for run's direct callers
    if plain:
        return None
    raise ValueError(message)


# num_threads=None is capped at the CPU count unless OMP_NUM_THREADS is set (0: no cap);
# libgomp reads OMP_NUM_THREADS once, at load: so does this module.
cdef int _default_cap = 0 if os.environ.get("OMP_NUM_THREADS") else (os.cpu_count() or 1)


cdef int _default_threads() noexcept nogil:
    cdef int n = omp_get_max_threads()
    if _default_cap > 0 and n > _default_cap:
        n = _default_cap
    return n if n > 1 else 1


cdef object _ndarray = np.ndarray


cdef object _call(Variant self, const Call* c, const cgdn_settings* s,
                  Py_ssize_t num_threads):
    # the work units of a call, its tiles, and the careful path for the tiles flagged
    cdef Py_ssize_t tile, head = 0, n_tiles
    if c.channels_last:
        tile = min(_tile_pixels(c.n_ch), c.n_units)
        n_tiles = (c.n_units + tile - 1) // tile
    else:
        tile = min(_tile_positions(c.n_ch), c.n_units)
        head = used_head(c.n_units, tile, _head_positions(c.x, c.itemsize, tile))
        n_tiles = c.n_batch * n_blocks(c.n_units, tile, head)
    _run_tiles(self.v, c, tile, head, n_tiles, s, <int> max(1, min(num_threads, n_tiles)))


cdef object _arrays(Variant self, object x, object beta, object gamma, object out,
                    bint data_last, const cgdn_settings* s, Py_ssize_t num_threads,
                    bint plain):
    # GDN of whole arrays. With `plain` (apply_plain): None wherever the arrays are not
    # the plain case (the general path decides, converts or raises); without (run): a
    # ValueError instead. out None: a new array (plain only).
    cdef Py_buffer xv, bv, gv, ov
    cdef int held = 0, size, status
    cdef double beta_max
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
            return _refuse(plain, "x, beta and gamma must be float32 or float64 arrays "
                                  "of one dtype, x of rank >= 2 and not empty")
        c.n_ch = xv.shape[xv.ndim - 1] if c.channels_last else xv.shape[1]
        if bv.shape[0] != c.n_ch or gv.shape[0] != c.n_ch or gv.shape[1] != c.n_ch:
            return _refuse(plain, "beta and gamma must match the channel count")
        # (run's callers checked the values; the pass still gives gamma's largest entry)
        c.gamma_max = INFINITY
        status = _values_status(&bv, &beta_max)
        status |= _values_status(&gv, &c.gamma_max)
        if status and plain:
            return None
        if out is None:
            if not plain:
                raise ValueError("out is required")
            out = np.empty_like(x)
        try:
            PyObject_GetBuffer(out, &ov,
                               PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
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
        _call(self, &c, s, num_threads)
        return out
    finally:
        if held >= 4:
            PyBuffer_Release(&ov)
        if held >= 3:
            PyBuffer_Release(&gv)
        if held >= 2:
            PyBuffer_Release(&bv)
        if held >= 1:
            PyBuffer_Release(&xv)


cdef class Variant:
    """One kernel variant (instruction set) of this build, and the entry points that run
    on its kernels. :func:`variants` lists them; ``cgdn._isa`` picks one."""

    def __init__(self):
        raise TypeError("Variant objects come from cgdn._core.variants()")

    def __repr__(self):
        return f"<cgdn kernel variant {self.ISA!r}>"

    def run(self, x, beta, gamma, out, bint channels_last, double alpha, double epsilon,
            bint inverse, bint rectify, Py_ssize_t num_threads):
        """GDN of ``x`` into ``out`` with checked arguments, as :func:`cgdn.apply_gdn`
        runs it.

        ``x``, ``beta`` (C,), ``gamma`` (C, C) and ``out`` (x's shape; ``x`` itself or not
        overlapping it) are C-contiguous arrays of one dtype, float32 or float64; ``x`` is
        (..., C) if ``channels_last`` (or of rank 2), else (N, C, ...). Picks the work
        units (tiles of pixels or of positions), makes the mixer and each thread's
        scratch, runs the tiles on ``num_threads`` threads (at most one per tile) and
        finishes flagged tiles on the careful path. Returns ``out``.
        """
        if num_threads < 1:
            raise ValueError("num_threads must be >= 1")
        cdef cgdn_settings s = make_settings(alpha, epsilon, inverse, rectify)
        return _arrays(self, x, beta, gamma, out, channels_last, &s, num_threads, False)

    def apply_plain(self, inputs, beta, gamma, inverse, rectify, alpha, epsilon,
                    data_format, out, num_threads):
        """:func:`cgdn.apply_gdn` in one call for its plain case, else None.

        Plain: ``inputs``, ``beta``, ``gamma`` (and ``out`` if given) are ndarrays (not
        subclasses), C-contiguous, of one native dtype, float32 or float64, with the
        shapes apply_gdn asks for; ``inputs`` not empty, ``beta`` and ``gamma`` finite and
        >= 0; ``out`` writeable and ``inputs`` itself or not overlapping it; ``inverse``
        and ``rectify`` bools, ``alpha`` and ``epsilon`` finite positive floats,
        ``data_format`` one of the two names, ``num_threads`` None or a positive int. The
        result is what apply_gdn's general path gives (the same work units and kernels);
        anything else returns None, for that path to convert, copy or raise.
        """
        cdef cgdn_settings s
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
        s = make_settings(alpha, epsilon, inverse, rectify)
        return _arrays(self, inputs, beta, gamma, out, data_last, &s, threads, True)


cdef Variant _variant(const cgdn_variant* v):
    cdef Variant variant = Variant.__new__(Variant)
    variant.v = v
    variant.ISA = v.f32.isa.decode()
    variant.VECTOR_REGISTERS = v.f32.registers
    variant.MAX_PANEL_VECTORS = v.f32.max_panel_vectors
    variant.LANES = {"float32": v.f32.lanes, "float64": v.f64.lanes}
    return variant


def variants():
    """The kernel variants built into this module, best first (whether this CPU runs
    them or not: :func:`cpu_supports`)."""
    cdef Py_ssize_t i = 0
    found = []
    while cgdn_variants[i].f32 != NULL:
        found.append(_variant(&cgdn_variants[i]))
        i += 1
    return found


def cpu_supports(isa):
    """Whether this CPU (and OS) can run the kernels built for ``isa``: 'avx2', 'avx512'."""
    return bool(cgdn_cpu_supports(isa.encode()))


def parameter_status(const floating[::1] values):
    """0 if every value is finite and >= 0; 1 if one is NaN or infinite; 2 if one is
    negative (and all are finite). One pass without the GIL, so that checking a
    parameter costs less than NumPy's reductions on small arrays."""
    cdef int status
    cdef double largest
    with nogil:
        if values.shape[0] == 0:
            status = 0
        elif floating is float:
            status = cgdn_status_f32(&values[0], values.shape[0], &largest)
        else:
            status = cgdn_status_f64(&values[0], values.shape[0], &largest)
    return status


def default_num_threads():
    """The thread count of ``num_threads=None``: the calling thread's OpenMP default
    (``OMP_NUM_THREADS``, threadpoolctl's OpenMP limits), capped at the CPU count when
    ``OMP_NUM_THREADS`` was unset when cgdn was imported (libgomp reads it once, then)."""
    return _default_threads()


include "_density_impl.pxi"


def pool_stats():
    """Counters of the worker threads since the process started (cgdn/pool.h): calls
    handed to helper threads, calls run alone because another call held the helpers or
    one was still leaving the previous call, and items the helpers ran. Zeros where the
    threads are OpenMP's (Windows)."""
    return {"published": cgdn_pool_stats[0], "alone_busy": cgdn_pool_stats[1],
            "alone_late_helper": cgdn_pool_stats[2], "helper_items": cgdn_pool_stats[3]}


def omp_max_threads():
    """``omp_get_max_threads()`` of the calling thread (1 in a build without OpenMP)."""
    return omp_get_max_threads()


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(CGDN_OPENMP_ENABLED)
