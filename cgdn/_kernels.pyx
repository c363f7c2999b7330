# Compiler directives (boundscheck, wraparound, cdivision, ...) are set once, in setup.py.
"""Fused GDN / IGDN kernels (private).

Called by ``cgdn._gdn`` with validated, C-contiguous, same-dtype buffers only, so the
kernels cannot fail: they are ``noexcept nogil`` and run ``prange`` over tiles of pixels.
Each tile is processed in one pass: the pool input ``f(x)`` is written to this thread's
scratch, mixed across channels (a GEMM, or a hand loop for few channels), and the
output is written while the tile is still in cache. ``out`` may be ``x`` itself: every
element of ``x`` is read before the element of ``out`` at the same place is written.

gamma convention: ``gamma[j, i]`` weighs input channel ``j`` in the pool of output
channel ``i`` (TensorFlow's orientation), i.e. ``pool = f(x) @ gamma`` per pixel.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.float cimport DBL_MAX, DBL_MIN, FLT_MAX, FLT_MIN
from libc.math cimport pow, powf, sqrt, sqrtf
from scipy.linalg.cython_blas cimport dgemm, sgemm

from cgdn._openmp cimport CGDN_OPENMP_ENABLED, omp_get_max_threads

cdef extern from *:
    """
    #ifndef CGDN_DEBUG_BUILD
    #define CGDN_DEBUG_BUILD 0
    #endif
    """
    bint CGDN_DEBUG_BUILD

# Whether this module was built with CGDN_CYTHON_DEBUG=1 (bounds checks on).
DEBUG_BUILD = bool(CGDN_DEBUG_BUILD)

# With at most this many channels the channel mix is a hand loop: a BLAS call per tile
# costs more than it saves.
SMALL_CHANNELS = 8
cdef Py_ssize_t _SMALL_CHANNELS = SMALL_CHANNELS


cdef enum PoolMode:
    POOL_SQUARE = 0     # alpha == 2: f(v) = v * v
    POOL_ABS = 1        # alpha == 1: f(v) = |v|
    POOL_POW = 2        # other alpha: f(v) = |v| ** alpha


cdef enum RootMode:
    ROOT_SQRT = 0       # epsilon == 0.5
    ROOT_ONE = 1        # epsilon == 1
    ROOT_POW = 2        # other epsilon


cdef struct Settings:
    PoolMode pool_mode
    RootMode root_mode
    double alpha
    double epsilon
    bint inverse
    bint rectify


cdef Settings _make_settings(double alpha, double epsilon, bint inverse, bint rectify):
    cdef Settings s
    s.pool_mode = POOL_SQUARE if alpha == 2.0 else (POOL_ABS if alpha == 1.0 else POOL_POW)
    s.root_mode = ROOT_SQRT if epsilon == 0.5 else (ROOT_ONE if epsilon == 1.0 else ROOT_POW)
    s.alpha = alpha
    s.epsilon = epsilon
    s.inverse = inverse
    s.rectify = rectify
    return s


# ---------------------------------------------------------------------------------------
# Scalar helpers

cdef inline floating _sqrt(floating v) noexcept nogil:
    if floating is float:
        return sqrtf(v)
    else:
        return sqrt(v)


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
    return -v if v < 0 else v


cdef inline bint _out_of_range(floating n) noexcept nogil:
    # beta + pool overflowed, is zero or subnormal, or is NaN: the fast path may have lost
    # the answer (x = 1e30 in float32 squares to inf; inf * 0 in the mix gives NaN).
    if floating is float:
        return not (n >= FLT_MIN and n <= FLT_MAX)
    else:
        return not (n >= DBL_MIN and n <= DBL_MAX)


cdef inline bint _finite(floating v) noexcept nogil:
    if floating is float:
        return v - v == 0   # false for inf and NaN
    else:
        return v - v == 0


cdef inline floating _root(floating n, RootMode mode, floating epsilon) noexcept nogil:
    if mode == ROOT_SQRT:
        return _sqrt(n)
    if mode == ROOT_ONE:
        return n
    return _pow(n, epsilon)


cdef inline floating _normalized(floating x, floating n, const Settings* s) noexcept nogil:
    # One output value from its input and beta + pool: the same correctly rounded
    # operations in every loop, so the rescue pass reproduces the fast pass bit for bit.
    if s.inverse:
        return _rectified(x, s.rectify) * _root(n, s.root_mode, <floating> s.epsilon)
    return _rectified(x, s.rectify) / _root(n, s.root_mode, <floating> s.epsilon)


# ---------------------------------------------------------------------------------------
# Passes over one contiguous run of elements

cdef void _pool_input(const floating* x,     # IN  n elements
                      floating* f,           # OUT n elements: f(x)
                      Py_ssize_t n, const Settings* s) noexcept nogil:
    cdef Py_ssize_t k
    cdef floating v, alpha = <floating> s.alpha
    cdef bint rectify = s.rectify
    if s.pool_mode == POOL_SQUARE:
        for k in range(n):
            v = _rectified(x[k], rectify)
            f[k] = v * v
    elif s.pool_mode == POOL_ABS:
        for k in range(n):
            f[k] = _abs(_rectified(x[k], rectify))
    else:
        for k in range(n):
            f[k] = _pow(_abs(_rectified(x[k], rectify)), alpha)


cdef void _normalize_channels(const floating* x,      # IN  n channels of one pixel
                              const floating* pool,   # IN  sum_j gamma[j, i] f(x[j]), no beta
                              const floating* beta,   # IN  n channels
                              floating* out,          # OUT n channels; may be x
                              Py_ssize_t n, const Settings* s) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        out[k] = _normalized(x[k], pool[k] + beta[k], s)


cdef void _normalize_positions(const floating* x,     # IN  n positions of one channel
                               const floating* pool,  # IN  n positions, no beta
                               floating beta,         # IN  this channel's beta
                               floating* out,         # OUT n positions; may be x
                               Py_ssize_t n, const Settings* s) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        out[k] = _normalized(x[k], pool[k] + beta, s)


# ---------------------------------------------------------------------------------------
# Channel mixing

cdef inline void _gemm(char transa, char transb, int m, int n, int k,
                       const floating* a, int lda, const floating* b, int ldb,
                       floating* c, int ldc) noexcept nogil:
    # Column-major c = op(a) @ op(b) (BLAS alpha = 1, beta = 0). SciPy's BLAS
    # signatures are not const-qualified, hence the casts; BLAS does not write a or b.
    cdef floating one = 1, zero = 0
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &one, <float*> a, &lda, <float*> b, &ldb,
              &zero, c, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &one, <double*> a, &lda, <double*> b, &ldb,
              &zero, c, &ldc)


cdef void _mix_pixels(const floating* f,      # IN  (n_rows, n_ch) row-major
                      const floating* gamma,  # IN  (n_ch, n_ch): gamma[j, i], j = input
                      floating* pool,         # OUT (n_rows, n_ch) = f @ gamma
                      Py_ssize_t n_rows, Py_ssize_t n_ch) noexcept nogil:
    cdef Py_ssize_t r, i, j
    cdef floating v
    cdef floating* p
    cdef const floating* g
    if n_ch > _SMALL_CHANNELS:
        # Row-major (n_rows, C) @ (C, C) is column-major gamma^T-as-stored @ f^T.
        _gemm(c'N', c'N', <int> n_ch, <int> n_rows, <int> n_ch,
              gamma, <int> n_ch, f, <int> n_ch, pool, <int> n_ch)
        return
    for r in range(n_rows):
        p = pool + r * n_ch
        for i in range(n_ch):
            p[i] = 0
        for j in range(n_ch):
            v = f[r * n_ch + j]
            g = gamma + j * n_ch
            for i in range(n_ch):
                p[i] += v * g[i]


cdef void _mix_slab(const floating* f,      # IN  (n_ch, n_pos) row-major: channel rows
                    const floating* gamma,  # IN  (n_ch, n_ch): gamma[j, i], j = input
                    floating* pool,         # OUT (n_ch, n_pos) = gamma.T @ f
                    Py_ssize_t n_pos, Py_ssize_t n_ch) noexcept nogil:
    cdef Py_ssize_t i, j, k
    cdef floating g
    cdef floating* p
    cdef const floating* fj
    if n_ch > _SMALL_CHANNELS:
        # Column-major view: pool^T (n_pos, C) = f^T (n_pos, C) @ gamma.
        _gemm(c'N', c'T', <int> n_pos, <int> n_ch, <int> n_ch,
              f, <int> n_pos, gamma, <int> n_ch, pool, <int> n_pos)
        return
    for i in range(n_ch):
        p = pool + i * n_pos
        for k in range(n_pos):
            p[k] = 0
        for j in range(n_ch):
            g = gamma[j * n_ch + i]
            fj = f + j * n_pos
            for k in range(n_pos):
                p[k] += g * fj[k]


cdef bint _pool_out_of_range(const floating* pool,   # IN  n values, no beta
                             const floating* beta,   # IN  beta, indexed k % beta_period
                             Py_ssize_t n, Py_ssize_t beta_period) noexcept nogil:
    # Whether any beta + pool of a run is out of range (see _out_of_range).
    cdef Py_ssize_t r, k
    cdef bint flagged = False
    for r in range(n // beta_period):
        for k in range(beta_period):
            flagged |= _out_of_range(pool[r * beta_period + k] + beta[k])
    return flagged


cdef bint _all_finite(const floating* x, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        if not _finite(x[k * stride]):
            return False
    return True


# A pixel needs the careful path when its pool is out of range although all its inputs
# are finite. (With a NaN or Inf input the pixel has no finite answer; the fast path's
# NaN stays confined to it.)

cdef bint _pixel_bad(const floating* x, Py_ssize_t x_stride,       # IN  the pixel's inputs
                     const floating* pool, Py_ssize_t pool_stride,  # IN  its pool values
                     const floating* beta, Py_ssize_t n_ch) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n_ch):
        if _out_of_range(pool[i * pool_stride] + beta[i]):
            return _all_finite(x, n_ch, x_stride)
    return False


# ---------------------------------------------------------------------------------------
# Tiles
#
# A tile whose pool is out of range is flagged and left unwritten (so even in place its
# input is intact). The caller then runs the tile again with a ``bad`` array: the same
# arithmetic writes every pixel whose pool is in range (bit-identical to a clean run) and
# marks the others, which the caller recomputes with a careful path.

cdef bint _gdn_tile_channels_last(
        const floating* x,      # IN  (n_rows, n_ch) pixels of this tile
        floating* out,          # OUT (n_rows, n_ch); may be x
        const floating* beta,   # IN  (n_ch,)
        const floating* gamma,  # IN  (n_ch, n_ch)
        floating* f,            # SCRATCH (n_rows, n_ch)
        floating* pool,         # SCRATCH (n_rows, n_ch)
        unsigned char* bad,     # OUT (n_rows,) per-pixel flags, or NULL (see above)
        Py_ssize_t n_rows, Py_ssize_t n_ch, const Settings* s) noexcept nogil:
    cdef Py_ssize_t r
    _pool_input(x, f, n_rows * n_ch, s)
    _mix_pixels(f, gamma, pool, n_rows, n_ch)
    if bad == NULL:
        if _pool_out_of_range(pool, beta, n_rows * n_ch, n_ch):
            for r in range(n_rows):
                if _pixel_bad(x + r * n_ch, 1, pool + r * n_ch, 1, beta, n_ch):
                    return True
        for r in range(n_rows):
            _normalize_channels(x + r * n_ch, pool + r * n_ch, beta, out + r * n_ch, n_ch, s)
        return False
    for r in range(n_rows):  # rescue pass: write the good pixels, mark the others
        bad[r] = _pixel_bad(x + r * n_ch, 1, pool + r * n_ch, 1, beta, n_ch)
        if not bad[r]:
            _normalize_channels(x + r * n_ch, pool + r * n_ch, beta, out + r * n_ch, n_ch, s)
    return False


cdef bint _gdn_tile_channels_first(
        const floating* x,      # IN  channel i of this block at x + i * row_stride
        floating* out,          # OUT same layout as x; may be x
        const floating* beta,   # IN  (n_ch,)
        const floating* gamma,  # IN  (n_ch, n_ch)
        floating* f,            # SCRATCH (n_ch, n_pos)
        floating* pool,         # SCRATCH (n_ch, n_pos)
        unsigned char* bad,     # OUT (n_pos,) per-position flags, or NULL (see above)
        Py_ssize_t n_pos, Py_ssize_t n_ch, Py_ssize_t row_stride,
        const Settings* s) noexcept nogil:
    cdef Py_ssize_t i, k
    for i in range(n_ch):
        _pool_input(x + i * row_stride, f + i * n_pos, n_pos, s)
    _mix_slab(f, gamma, pool, n_pos, n_ch)
    if bad == NULL:
        for i in range(n_ch):
            if _pool_out_of_range(pool + i * n_pos, &beta[i], n_pos, 1):
                for k in range(n_pos):
                    if _pixel_bad(x + k, row_stride, pool + k, n_pos, beta, n_ch):
                        return True  # nothing written yet
                break
        for i in range(n_ch):
            _normalize_positions(x + i * row_stride, pool + i * n_pos, beta[i],
                                 out + i * row_stride, n_pos, s)
        return False
    for k in range(n_pos):  # rescue pass: write the good positions, mark the others
        bad[k] = _pixel_bad(x + k, row_stride, pool + k, n_pos, beta, n_ch)
    for i in range(n_ch):
        for k in range(n_pos):
            if not bad[k]:
                out[i * row_stride + k] = _normalized(x[i * row_stride + k],
                                                      pool[i * n_pos + k] + beta[i], s)
    return False


# ---------------------------------------------------------------------------------------
# Entry points (hold the GIL only to set up; the work runs without it)

cdef int _check_common(Py_ssize_t n_ch, Py_ssize_t beta_len, Py_ssize_t g0, Py_ssize_t g1,
                       Py_ssize_t tile, Py_ssize_t scratch_rows, Py_ssize_t scratch_len,
                       Py_ssize_t n_flags, Py_ssize_t n_tiles, int num_threads) except -1:
    # Guards for direct callers of this private module; cgdn._gdn always passes these.
    if beta_len != n_ch or g0 != n_ch or g1 != n_ch:
        raise ValueError("beta and gamma must match the channel count")
    if tile < 1 or num_threads < 1:
        raise ValueError("tile and num_threads must be >= 1")
    if scratch_rows < num_threads or scratch_len < 2 * tile * n_ch:
        raise ValueError("scratch must have shape (>= num_threads, >= 2 * tile * n_channels)")
    if n_flags < n_tiles:
        raise ValueError("flags must have one entry per tile")
    return 0


def gdn_channels_last(const floating[:, ::1] x,        # IN  (n_pixels, n_channels)
                      const floating[::1] beta,        # IN  (n_channels,)
                      const floating[:, ::1] gamma,    # IN  (n_channels, n_channels)
                      floating[:, ::1] out,            # OUT (n_pixels, n_channels); may be x
                      floating[:, ::1] scratch,        # SCRATCH (num_threads, 2 * tile * C)
                      unsigned char[::1] flags,        # OUT (n_tiles,): 1 = pool out of range
                      Py_ssize_t tile, double alpha, double epsilon,
                      bint inverse, bint rectify, int num_threads):
    """GDN over rows of a (pixels, channels) matrix, ``tile`` pixels per work unit.

    Returns the number of tiles flagged in ``flags`` (a pool value overflowed or was
    zero/subnormal there; the caller recomputes those tiles with a careful path).
    """
    cdef Py_ssize_t n_pixels = x.shape[0], n_ch = x.shape[1]
    cdef Py_ssize_t n_tiles, t, start, n_flagged = 0, stride = scratch.shape[1]
    cdef floating* work
    cdef unsigned char flag
    cdef int tid
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    if out.shape[0] != n_pixels or out.shape[1] != n_ch:
        raise ValueError("out must have the shape of x")
    if n_pixels == 0 or n_ch == 0:
        return 0
    n_tiles = (n_pixels + tile - 1) // tile
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], stride, flags.shape[0], n_tiles, num_threads)
    with nogil, parallel(num_threads=num_threads):
        tid = threadid()
        work = &scratch[tid, 0]
        for t in prange(n_tiles, schedule="static"):
            start = t * tile
            flag = _gdn_tile_channels_last(&x[start, 0], &out[start, 0], &beta[0],
                                           &gamma[0, 0], work, work + tile * n_ch, NULL,
                                           min(tile, n_pixels - start), n_ch, &s)
            flags[t] = flag
            n_flagged += flag
    return n_flagged


def gdn_channels_first(const floating[:, :, ::1] x,    # IN  (n_batch, n_channels, n_positions)
                       const floating[::1] beta,       # IN  (n_channels,)
                       const floating[:, ::1] gamma,   # IN  (n_channels, n_channels)
                       floating[:, :, ::1] out,        # OUT like x; may be x
                       floating[:, ::1] scratch,       # SCRATCH (num_threads, 2 * tile * C)
                       unsigned char[::1] flags,       # OUT (n_tiles,): 1 = pool out of range
                       Py_ssize_t tile, double alpha, double epsilon,
                       bint inverse, bint rectify, int num_threads):
    """GDN over (batch, channels, positions) blocks, ``tile`` positions per work unit.

    Tile ``t`` covers image ``t // n_blocks``, positions from ``(t % n_blocks) * tile``.
    Returns the number of flagged tiles, as :func:`gdn_channels_last`.
    """
    cdef Py_ssize_t n_batch = x.shape[0], n_ch = x.shape[1], n_pos = x.shape[2]
    cdef Py_ssize_t n_blocks, n_tiles, t, b, start, n_flagged = 0, stride = scratch.shape[1]
    cdef floating* work
    cdef unsigned char flag
    cdef int tid
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    if out.shape[0] != n_batch or out.shape[1] != n_ch or out.shape[2] != n_pos:
        raise ValueError("out must have the shape of x")
    if n_batch == 0 or n_ch == 0 or n_pos == 0:
        return 0
    n_blocks = (n_pos + tile - 1) // tile
    n_tiles = n_batch * n_blocks
    _check_common(n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], stride, flags.shape[0], n_tiles, num_threads)
    with nogil, parallel(num_threads=num_threads):
        tid = threadid()
        work = &scratch[tid, 0]
        for t in prange(n_tiles, schedule="static"):
            b = t // n_blocks
            start = (t - b * n_blocks) * tile
            flag = _gdn_tile_channels_first(&x[b, 0, start], &out[b, 0, start], &beta[0],
                                            &gamma[0, 0], work, work + tile * n_ch, NULL,
                                            min(tile, n_pos - start), n_ch, n_pos, &s)
            flags[t] = flag
            n_flagged += flag
    return n_flagged


def rescue_tile(const floating[:, :, ::1] x,      # IN  canonical input (3-D view)
                const floating[::1] beta,
                const floating[:, ::1] gamma,
                floating[:, :, ::1] out,           # OUT like x; may be x
                unsigned char[::1] bad,            # OUT one flag per pixel of the tile
                bint channels_last, Py_ssize_t t, Py_ssize_t tile,
                double alpha, double epsilon, bint inverse, bint rectify):
    """Run tile ``t`` again, writing its in-range pixels and flagging the others.

    ``x`` is ``(1, n_pixels, C)`` for channels_last or ``(N, C, n_positions)`` for
    channels_first. Returns the number of pixels of the tile.
    """
    cdef Py_ssize_t n_ch = beta.shape[0], b, start, n, n_blocks
    cdef Settings s = _make_settings(alpha, epsilon, inverse, rectify)
    if channels_last:
        start = t * tile
        n = min(tile, x.shape[1] - start)
    else:
        n_blocks = (x.shape[2] + tile - 1) // tile
        b = t // n_blocks
        start = (t - b * n_blocks) * tile
        n = min(tile, x.shape[2] - start)
    if n <= 0 or bad.shape[0] < n or gamma.shape[0] != n_ch or gamma.shape[1] != n_ch:
        raise ValueError("tile index or buffers out of range")
    work = np.empty(2 * n * n_ch, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] w = work
    with nogil:
        if channels_last:
            _gdn_tile_channels_last(&x[0, start, 0], &out[0, start, 0], &beta[0],
                                    &gamma[0, 0], &w[0], &w[n * n_ch], &bad[0], n, n_ch, &s)
        else:
            _gdn_tile_channels_first(&x[b, 0, start], &out[b, 0, start], &beta[0],
                                     &gamma[0, 0], &w[0], &w[n * n_ch], &bad[0], n, n_ch,
                                     x.shape[2], &s)
    return n


def omp_max_threads():
    """``omp_get_max_threads()`` of the calling thread (1 in a build without OpenMP)."""
    return omp_get_max_threads()


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(CGDN_OPENMP_ENABLED)
