"""The careful path: pixels whose pool overflowed or underflowed in the fast kernels.

The kernels flag a pixel when some ``beta + pool`` is infinite, NaN, zero or subnormal in
the compute dtype although all of the pixel's inputs are finite: e.g. ``x = 1e30`` in
float32 squares to inf and the fast path would return 0 where the answer is about
``1 / sqrt(gamma)``. Those pixels are recomputed here in float64 in the log domain
(``log pool_i = logsumexp_j(log gamma[j, i] + alpha log|x_j|, log beta_i)``), so no
term overflows or underflows, and every answer that is finite in the math comes out
finite unless it is beyond the output dtype's range (then it is +-inf).
"""
import numpy as np

# pixels per chunk of the (pixels, C, C) log-domain pool
_CHUNK_ELEMENTS = 1 << 20


def careful_rows(x, beta, gamma, *, inverse, rectify, alpha, epsilon):
    """GDN of a (P, C) block of pixels without intermediate overflow or underflow."""
    x = np.asarray(x, dtype=np.float64)
    if rectify:
        x = np.where(x < 0, 0.0, x)  # keeps NaN, as the kernels do
    n_channels = x.shape[1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        log_gamma = np.log(np.asarray(gamma, dtype=np.float64))     # (C_j, C_i), -inf at 0
        log_beta = np.log(np.asarray(beta, dtype=np.float64))       # (C_i,)
        log_x = np.log(np.abs(x))                                   # -inf at 0
        log_pool = np.empty_like(x)
        chunk = max(1, _CHUNK_ELEMENTS // (n_channels * n_channels))
        for start in range(0, x.shape[0], chunk):
            terms = log_gamma[None] + alpha * log_x[start:start + chunk, :, None]
            terms = np.concatenate(
                [terms, np.broadcast_to(log_beta, (terms.shape[0], 1, n_channels))], axis=1)
            top = np.max(terms, axis=1)                             # (p, C_i)
            top_safe = np.where(np.isfinite(top), top, 0.0)
            total = np.sum(np.exp(terms - top_safe[:, None, :]), axis=1)
            log_pool[start:start + chunk] = top_safe + np.log(total)
        log_root = epsilon * log_pool
        log_y = log_x + (log_root if inverse else -log_root)
        return np.sign(x) * np.exp(log_y)


def rescue_tiles(kernels, src, dest, flags, tile, head, channels_last, beta, gamma,
                 **settings):
    """Finish every tile the kernels flagged, from ``src`` into ``dest``.

    ``src``/``dest`` are the kernels' canonical views: (P, C) for channels_last,
    (N, C, S) for channels_first, and the tile numbering (``tile``, ``head``) is theirs.
    Each flagged tile is run again through the same kernel arithmetic, which writes its
    in-range pixels (bit for bit what a clean run gives) and marks the rest; only those
    are recomputed here. Flagged tiles were left unwritten, so the marked pixels still
    hold their input even when ``dest`` is ``src``. ``kernels`` is the kernel variant
    (:class:`cgdn._core.Variant`) of the fast pass.
    """
    if channels_last:
        src, dest = src.reshape((1,) + src.shape), dest.reshape((1,) + dest.shape)
    bad = np.zeros(tile, dtype=np.uint8)
    for t in np.flatnonzero(flags):
        b, start, n = kernels.rescue_tile(src, beta, gamma, dest, bad, channels_last, int(t),
                                          tile, head, settings["alpha"], settings["epsilon"],
                                          settings["inverse"], settings["rectify"])
        if channels_last:
            rows = start + np.flatnonzero(bad[:n])
            with np.errstate(over="ignore"):  # beyond the output dtype: +-inf
                dest[0, rows] = careful_rows(src[0, rows], beta, gamma, **settings)
        else:
            cols = start + np.flatnonzero(bad[:n])
            with np.errstate(over="ignore"):
                dest[b][:, cols] = careful_rows(src[b][:, cols].T, beta, gamma, **settings).T
