# Entry points for the tests only: the core's tile loops driven with the caller's tile
# size, scratch and flags, and the mixers the variants make. The public functions never
# import this module; it is compiled once, like the core, without instruction-set flags.

import numpy as np

from cython cimport floating
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc

from cgdn._core cimport (Variant, cgdn_kernels, cgdn_settings, cgdn_tile, kernels_of,
                         make_settings, make_tile, n_blocks, new_mixer, rescue_bytes,
                         rescue_tile, scratch_elements, tile_mixer, tiles_channels_first,
                         tiles_channels_last, used_head)


def scratch_size(Variant variant, Py_ssize_t n_channels, Py_ssize_t tile, bint channels_last):
    """Scratch elements one thread needs for tiles of ``tile`` pixels (or positions) on
    ``variant``: its two areas, and the slack for starting them on a cache line."""
    return scratch_elements(variant.v, n_channels, tile, channels_last)


def channels_first_blocks(Py_ssize_t n_positions, Py_ssize_t tile, Py_ssize_t head):
    """Blocks (tiles) per image of :func:`gdn_channels_first` for these arguments."""
    return n_blocks(n_positions, tile, used_head(n_positions, tile, head))


def mixer(Variant variant, const floating[:, ::1] gamma, bint channels_last):
    """``(offset, values)``: the mixer ``variant`` makes for ``gamma`` (packed in panels for
    channels_last, transposed for channels_first), its distance in bytes from a cache line
    boundary and a copy of its elements."""
    cdef const cgdn_kernels* k = kernels_of(variant.v, sizeof(floating))
    cdef void* block = NULL
    cdef Py_ssize_t n_ch = gamma.shape[0]
    cdef floating* m = <floating*> new_mixer(k, &gamma[0, 0], n_ch, channels_last, &block)
    try:
        values = np.asarray(<floating[:k.mixer_size(n_ch, channels_last)]> m).copy()
        return <uintptr_t> m % 64, values
    finally:
        free(block)


cdef int _check_common(Variant variant, Py_ssize_t n_ch, Py_ssize_t beta_len, Py_ssize_t g0,
                       Py_ssize_t g1, Py_ssize_t tile, Py_ssize_t scratch_rows,
                       Py_ssize_t scratch_len, Py_ssize_t n_flags, Py_ssize_t n_tiles,
                       int num_threads, bint channels_last) except -1:
    if beta_len != n_ch or g0 != n_ch or g1 != n_ch:
        raise ValueError("beta and gamma must match the channel count")
    if tile < 1 or num_threads < 1:
        raise ValueError("tile and num_threads must be >= 1")
    if (scratch_rows < num_threads
            or scratch_len < scratch_elements(variant.v, n_ch, tile, channels_last)):
        raise ValueError("scratch must have shape (>= num_threads, "
                         ">= scratch_size(variant, n_channels, tile, channels_last))")
    if n_flags < n_tiles:
        raise ValueError("flags must have one entry per tile")
    return 0


def gdn_channels_last(Variant variant,
                      const floating[:, ::1] x,        # IN  (n_pixels, n_channels)
                      const floating[::1] beta,        # IN  (n_channels,)
                      const floating[:, ::1] gamma,    # IN  (n_channels, n_channels)
                      floating[:, ::1] out,            # OUT (n_pixels, n_channels); may be x
                      floating[:, ::1] scratch,        # SCRATCH (num_threads, scratch_size)
                      unsigned char[::1] flags,        # OUT (n_tiles,): 1 = careful path
                      Py_ssize_t tile, double alpha, double epsilon,
                      bint inverse, bint rectify, int num_threads):
    """GDN over rows of a (pixels, channels) matrix on ``variant``, ``tile`` pixels per
    work unit, with the caller's scratch and flags.

    Returns the number of tiles flagged in ``flags``: they hold a pixel whose pool
    overflowed or underflowed, and were left unwritten for the careful path.
    """
    cdef Py_ssize_t n_pixels = x.shape[0], n_ch = x.shape[1], n_flagged
    cdef cgdn_settings s = make_settings(alpha, epsilon, inverse, rectify)
    cdef const cgdn_kernels* k = kernels_of(variant.v, sizeof(floating))
    cdef void* block = NULL
    cdef cgdn_tile tl
    if out.shape[0] != n_pixels or out.shape[1] != n_ch:
        raise ValueError("out must have the shape of x")
    if n_pixels == 0 or n_ch == 0:
        return 0
    _check_common(variant, n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], scratch.shape[1], flags.shape[0],
                  (n_pixels + tile - 1) // tile, num_threads, True)
    tl = make_tile(k, &beta[0], &gamma[0, 0], n_ch,
                   tile_mixer(k, &gamma[0, 0], n_ch, True, &block))
    try:
        with nogil:
            n_flagged = tiles_channels_last(
                variant.v, sizeof(floating), <const char*> &x[0, 0], <char*> &out[0, 0], &tl,
                n_pixels, tile, <char*> &scratch[0, 0], scratch.shape[1], &flags[0], &s,
                num_threads)
    finally:
        free(block)
    return n_flagged


def gdn_channels_first(Variant variant,
                       const floating[:, :, ::1] x,    # IN  (n_batch, n_channels, n_positions)
                       const floating[::1] beta,       # IN  (n_channels,)
                       const floating[:, ::1] gamma,   # IN  (n_channels, n_channels)
                       floating[:, :, ::1] out,        # OUT like x; may be x
                       floating[:, ::1] scratch,       # SCRATCH (num_threads, scratch_size)
                       unsigned char[::1] flags,       # OUT (n_tiles,): 1 = careful path
                       Py_ssize_t tile, Py_ssize_t head, double alpha, double epsilon,
                       bint inverse, bint rectify, int num_threads):
    """GDN over (batch, channels, positions) blocks on ``variant``, ``tile`` positions per
    work unit, with the caller's scratch and flags.

    Each image's positions are split into ``n_blocks = channels_first_blocks(n_positions,
    tile, head)`` blocks: the first ``head`` positions (if ``0 < head < n_positions``),
    then blocks of ``tile``. Tile ``t`` is block ``t % n_blocks`` of image ``t //
    n_blocks``. Returns the number of flagged tiles, as :func:`gdn_channels_last`.
    """
    cdef Py_ssize_t n_batch = x.shape[0], n_ch = x.shape[1], n_pos = x.shape[2], n_flagged
    cdef cgdn_settings s = make_settings(alpha, epsilon, inverse, rectify)
    cdef const cgdn_kernels* k = kernels_of(variant.v, sizeof(floating))
    cdef void* block = NULL
    cdef cgdn_tile tl
    if out.shape[0] != n_batch or out.shape[1] != n_ch or out.shape[2] != n_pos:
        raise ValueError("out must have the shape of x")
    if n_batch == 0 or n_ch == 0 or n_pos == 0:
        return 0
    head = used_head(n_pos, tile, head)
    _check_common(variant, n_ch, beta.shape[0], gamma.shape[0], gamma.shape[1], tile,
                  scratch.shape[0], scratch.shape[1], flags.shape[0],
                  n_batch * n_blocks(n_pos, tile, head), num_threads, False)
    tl = make_tile(k, &beta[0], &gamma[0, 0], n_ch,
                   tile_mixer(k, &gamma[0, 0], n_ch, False, &block))
    try:
        with nogil:
            n_flagged = tiles_channels_first(
                variant.v, sizeof(floating), <const char*> &x[0, 0, 0], <char*> &out[0, 0, 0],
                &tl, n_batch, n_pos, tile, head, <char*> &scratch[0, 0], scratch.shape[1],
                &flags[0], &s, num_threads)
    finally:
        free(block)
    return n_flagged


def three_pass_tile(Variant variant,
                    const floating[:, :, ::1] x,     # IN  (1, n_pixels, C) or (N, C, n_pos)
                    const floating[::1] beta,
                    const floating[:, ::1] gamma,
                    floating[:, :, ::1] out,         # OUT like x; may be x
                    bint channels_last, Py_ssize_t t, Py_ssize_t tile, Py_ssize_t head,
                    double alpha, double epsilon, bint inverse, bint rectify):
    """Tile ``t`` of a run (``tile`` and ``head`` as in :func:`gdn_channels_last` /
    :func:`gdn_channels_first`) through the careful path's three passes (f(x), mix,
    normalization): its in-range pixels written into ``out``, the others left unwritten.
    Returns a uint8 array with a flag per pixel of the tile, 1 where the pool was out of
    range."""
    cdef Py_ssize_t n_ch = beta.shape[0], n_units, n, itemsize = sizeof(floating)
    cdef cgdn_settings s = make_settings(alpha, epsilon, inverse, rectify)
    cdef const cgdn_kernels* k = kernels_of(variant.v, itemsize)
    cdef void* block = NULL
    cdef char* work = NULL
    cdef unsigned char[::1] bad_view
    cdef cgdn_tile tl
    if (gamma.shape[0] != n_ch or gamma.shape[1] != n_ch
            or x.shape[2 if channels_last else 1] != n_ch
            or (channels_last and x.shape[0] != 1)):
        raise ValueError("x, beta and gamma must match the channel count")
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[1] or out.shape[2] != x.shape[2]:
        raise ValueError("out must have the shape of x")
    n_units = x.shape[1] if channels_last else x.shape[2]
    if channels_last:
        if tile < 1 or not 0 <= t < (n_units + tile - 1) // tile:
            raise ValueError("tile index out of range")
    else:
        head = used_head(n_units, tile, head)
        if not 0 <= t < x.shape[0] * n_blocks(n_units, tile, head):
            raise ValueError("tile index out of range")
    bad = np.zeros(max(tile, 1), np.uint8)
    bad_view = bad
    tl = make_tile(k, &beta[0], &gamma[0, 0], n_ch,
                   tile_mixer(k, &gamma[0, 0], n_ch, channels_last, &block))
    try:
        work = <char*> malloc(rescue_bytes(variant.v, n_ch, tile, channels_last, itemsize))
        if work == NULL:
            raise MemoryError()
        with nogil:
            n = rescue_tile(variant.v, itemsize, <const char*> &x[0, 0, 0],
                            <char*> &out[0, 0, 0], &tl, &s, n_units, channels_last, t, tile,
                            head, work, &bad_view[0], NULL)
        return bad[:n]
    finally:
        free(work)
        free(block)
