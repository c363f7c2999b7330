"""A plain NumPy GDN: the oracle for tests, the demo and the benchmarks.

It evaluates the GDN formula directly (``|x| ** alpha @ gamma``, gamma[j, i] with j the
input channel) in the requested dtype, allocating freely. It is slow on purpose: it is
what cgdn is measured against, never what cgdn runs.
"""
import numpy as np


def reference_gdn(x, beta, gamma, *, inverse=False, rectify=False, alpha=2.0, epsilon=0.5,
                  data_format="channels_last", dtype=np.float64):
    """GDN / IGDN in plain NumPy, computed in ``dtype`` (float64 by default).

    Parameters
    ----------
    x : array_like of shape (N, ..., C) or (N, C, ...)
    beta : array_like of shape (C,)
    gamma : array_like of shape (C, C)
        ``gamma[j, i]``: weight of input channel ``j`` in output channel ``i``.
    inverse, rectify, alpha, epsilon, data_format
        As in :func:`cgdn.apply_gdn`.
    dtype : dtype, default float64
        The dtype of the computation and of the result.

    Returns
    -------
    ndarray of ``dtype``

    Examples
    --------
    >>> import numpy as np
    >>> from cgdn._reference import reference_gdn
    >>> reference_gdn(np.array([[3.0, 4.0]]), np.ones(2), 0.1 * np.eye(2)).round(4)
    array([[2.1764, 2.4807]])
    """
    x = np.asarray(x, dtype=dtype)
    beta = np.asarray(beta, dtype=dtype)
    gamma = np.asarray(gamma, dtype=dtype)
    moved = data_format == "channels_first" and x.ndim > 2
    if moved:
        x = np.moveaxis(x, 1, -1)
    if rectify:
        x = np.maximum(x, 0)
    f = x * x if alpha == 2 else np.abs(x) ** alpha
    pool = f @ gamma + beta
    root = np.sqrt(pool) if epsilon == 0.5 else pool**epsilon
    y = x * root if inverse else x / root
    return np.moveaxis(y, -1, 1) if moved else y
