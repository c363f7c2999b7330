"""GDN as a density model: its exact inverse, the log-determinant of its Jacobian, and
gradients (vector-Jacobian products), computed by fused kernels without a framework."""
import math
import warnings

import numpy as np

from cgdn import _core, _dask, _isa
from cgdn._reparam import BETA, GAMMA, reparam_value
from cgdn._store import check_store
from cgdn._threads import effective_num_threads, lazy_threads
from cgdn._validation import (as_input_array, check_flag, check_lazy_extras, check_out,
                              check_parameters, check_positive_real, compute_dtype,
                              read_input)


class ConvergenceWarning(RuntimeWarning):
    """Some positions of :func:`cgdn.gdn_inverse` have no inverse or did not converge
    (their results are NaN)."""


# float64 per-position arithmetic; the default tolerance is on the residual, relative to
# the largest |output| of the position
_DEFAULT_TOL = {np.dtype(np.float32): 1e-7, np.dtype(np.float64): 1e-13}
_DEFAULT_MAX_ITER = 50


def _common(inputs, beta, gamma, data_format, alpha, epsilon, rectify, name="inputs"):
    source = read_input(inputs, min_rank=2, data_format=data_format, name=name)
    beta, gamma = check_parameters(beta, gamma, source, np.dtype(np.float64))
    alpha = check_positive_real("alpha", alpha)
    epsilon = check_positive_real("epsilon", epsilon)
    rectify = check_flag("rectify", rectify)
    return source, beta, gamma, alpha, epsilon, rectify


def _rows(x, axis, dtype):
    """x as a C-contiguous (positions, C) matrix of ``dtype`` (a copy when needed)."""
    moved = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(moved, dtype=dtype).reshape(-1, x.shape[axis])


def _unrows(rows, shape, axis):
    moved_shape = tuple(np.delete(shape, axis)) + (shape[axis],)
    return np.moveaxis(rows.reshape(moved_shape), -1, axis)


def _finish(result, out, like_dtype):
    if out is None:
        return result.astype(like_dtype, copy=False)
    with np.errstate(over="ignore"):
        np.copyto(out, result, casting="unsafe")
    return out


def gdn_inverse(outputs, beta, gamma, *, rectify=False, alpha=2.0, epsilon=0.5,
                data_format="channels_last", tol=None, max_iter=None, out=None,
                num_threads=None):
    r"""The exact inverse of GDN: the ``x`` with ``apply_gdn(x) == outputs``.

    Every position is solved on its own, by Newton's method on the C equations
    :math:`x_i n_i(x)^{-\epsilon} = y_i`, started from one fixed-point step (IGDN of
    the outputs, the step of Ballé et al., 2016) and halving a step whenever it would
    increase the residual. A position has converged when the largest residual is at most
    ``tol`` times its largest ``|y|``; arithmetic is float64 for both dtypes.

    Convergence. GDN is invertible on its range when the Jacobian
    :math:`J = \mathrm{diag}(s) + \mathrm{diag}(c) \gamma^T \mathrm{diag}(f')` stays
    non-singular along the way; then Newton converges quadratically near the solution,
    and the fixed-point start lies close to it when the pools vary little. GDN saturates:
    with ``alpha=2, epsilon=0.5`` and one channel, ``|y| < 1/sqrt(gamma)``; outputs
    outside the range have no inverse. With ``rectify=True`` only non-negative outputs
    have one (negative inputs all map to 0; the preimage returned for ``y_i = 0`` is
    ``x_i = 0``).

    Parameters
    ----------
    outputs : array_like of shape (N, ..., C) or (N, C, ...)
        GDN outputs, float16/32/64.
    beta, gamma, rectify, alpha, epsilon, data_format
        As in :func:`cgdn.apply_gdn` (GDN's parameters, not IGDN's).
    tol : float, optional
        Relative residual to reach; 1e-13 for float64, 1e-7 for float32 by default.
    max_iter : int, optional
        Newton steps per position at most (50 by default).
    out : ndarray, optional
        Destination of the outputs' shape and dtype.
    num_threads : int, optional
        As in :func:`cgdn.apply_gdn`; results do not depend on it.

    Returns
    -------
    ndarray
        The inputs, of the outputs' shape and dtype. Positions without an inverse (out of
        range) or that did not converge are NaN, and one :class:`cgdn.ConvergenceWarning`
        gives their count.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 4))
    >>> beta, gamma = np.ones(4), 0.1 + 0.2 * np.eye(4)
    >>> y = cgdn.apply_gdn(x, beta, gamma)
    >>> bool(np.allclose(cgdn.gdn_inverse(y, beta, gamma), x, rtol=1e-10, atol=0))
    True
    >>> cgdn.apply_gdn(y, beta, gamma, inverse=True)[0, :2]   # IGDN: one step only
    array([ 0.12543081, -0.13178935])
    >>> x[0, :2]
    array([ 0.12573022, -0.13210486])
    """
    source, beta, gamma, alpha, epsilon, rectify = _common(
        outputs, beta, gamma, data_format, alpha, epsilon, rectify, name="outputs")
    y, axis = source.x, source.axis
    dtype = compute_dtype(y.dtype)
    tol = _DEFAULT_TOL[dtype] if tol is None else check_positive_real("tol", tol)
    if max_iter is None:
        max_iter = _DEFAULT_MAX_ITER
    elif isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)):
        raise TypeError(f"max_iter must be a positive int or None, got {max_iter!r}")
    elif max_iter < 1:
        raise ValueError(f"max_iter must be a positive int or None, got {max_iter}")
    if source.lazy:
        check_lazy_extras(out)
        return _dask.map_channel_blocks(
            gdn_inverse, y, beta, gamma, axis=axis, num_threads=lazy_threads(num_threads),
            rectify=rectify, alpha=alpha, epsilon=epsilon, data_format=source.data_format,
            tol=tol, max_iter=int(max_iter))
    out = check_out(out, y.shape, y.dtype)
    num_threads = effective_num_threads(num_threads)
    x_rows, steps = _inverse_rows(_rows(y, axis, dtype), beta, gamma, alpha, epsilon,
                                  rectify, tol, int(max_iter), num_threads)
    failed = int(np.count_nonzero(steps < 0))
    if failed:
        warnings.warn(
            f"gdn_inverse: {failed} of {steps.size} positions have no inverse (outputs out "
            f"of GDN's range) or did not converge within max_iter={max_iter}; they are NaN",
            ConvergenceWarning, stacklevel=2)
    return _finish(_unrows(x_rows, y.shape, axis), out, y.dtype)


def _inverse_rows(y_rows, beta, gamma, alpha, epsilon, rectify, tol, max_iter, num_threads):
    """``(x rows, Newton steps per row or -1)`` for a (P, C) matrix of outputs."""
    x_rows = np.empty_like(y_rows)
    steps = np.empty(y_rows.shape[0], np.intc)
    num_threads = max(1, min(num_threads, y_rows.shape[0]))
    _core.density_inverse(y_rows, beta, gamma, x_rows, steps, alpha, epsilon, tol, max_iter,
                          num_threads)
    if rectify:   # only non-negative outputs have a (non-negative) preimage
        negative = np.any(y_rows < 0, axis=1)
        x_rows[negative] = np.nan
        steps[negative] = -1
    return x_rows, steps


def gdn_logdet(inputs, beta, gamma, *, inverse=False, rectify=False, alpha=2.0,
               epsilon=0.5, data_format="channels_last", out=None, num_threads=None):
    r"""``log |det dy/dx|`` of GDN (or IGDN) at every position.

    The change of variables of a density model: if ``y = GDN(x)``, then
    :math:`\log p_x(x) = \log p_y(y) + \log |\det J(x)|` per position. The Jacobian is
    built in closed form, :math:`J_{ik} = \delta_{ik} s_i + c_i \gamma_{ki} f'(x_k)` with
    :math:`s_i = n_i^{\mp\epsilon}` and :math:`c_i = \mp\epsilon x_i s_i / n_i`, and
    factorized per position (LU with partial pivoting, float64) inside the kernel.

    Parameters
    ----------
    inputs : array_like of shape (N, ..., C) or (N, C, ...)
    beta, gamma, inverse, rectify, alpha, epsilon, data_format, num_threads
        As in :func:`cgdn.apply_gdn`.
    out : ndarray, optional
        Destination of the result's shape and dtype.

    Returns
    -------
    ndarray
        Shape: the inputs' without the channel axis; dtype: float64 for float64 inputs,
        float32 otherwise. ``-inf`` where the Jacobian is singular (with ``rectify``, any
        position with an input <= 0); NaN where an input is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> x = np.array([[0.5], [2.0]])                 # one channel: closed form
    >>> cgdn.gdn_logdet(x, beta=[1.0], gamma=[[0.5]])
    array([-0.17667455, -1.64791843])
    >>> np.log(1.0 / (1.0 + 0.5 * x[:, 0]**2) ** 1.5)  # dy/dx = beta / (beta + gamma x^2)^(3/2)
    array([-0.17667455, -1.64791843])
    """
    source, beta, gamma, alpha, epsilon, rectify = _common(
        inputs, beta, gamma, data_format, alpha, epsilon, rectify)
    x, axis = source.x, source.axis
    inverse = check_flag("inverse", inverse)
    dtype = compute_dtype(x.dtype)
    if source.lazy:
        check_lazy_extras(out)
        return _dask.map_channel_blocks(
            gdn_logdet, x, beta, gamma, axis=axis, num_threads=lazy_threads(num_threads),
            drop_axis=True, dtype=dtype, inverse=inverse, rectify=rectify, alpha=alpha,
            epsilon=epsilon, data_format=source.data_format)
    shape = tuple(np.delete(x.shape, axis))
    out = check_out(out, shape, dtype)
    num_threads = effective_num_threads(num_threads)
    rows = _rows(x, axis, dtype)
    result = np.empty(rows.shape[0], np.float64)
    _core.density_logdet(rows, beta, gamma, result, alpha, epsilon, inverse, rectify,
                         max(1, min(num_threads, max(1, rows.shape[0]))))
    return _finish(result.reshape(shape), out, dtype)


def _blocks(n_rows):
    """Rows per block of the parameter-gradient sums: fixed by the row count only (at
    most 64 blocks of at least one 64-row GEMM tile), so the order of additions never
    depends on the thread count."""
    return max(64, -(-n_rows // 64))


def gdn_vjp(inputs, beta, gamma, grad_outputs, *, inverse=False, rectify=False, alpha=2.0,
            epsilon=0.5, data_format="channels_last", num_threads=None):
    r"""Gradients of a loss through GDN (or IGDN): the vector-Jacobian product.

    Given ``grad_outputs`` = dL/dy at every position, returns dL/dx and the gradients for
    the effective parameters, summed over all positions:

    .. math::
        u_i = \mp\epsilon\, x_i s_i g_i / n_i, \quad
        \frac{\partial L}{\partial x_k} = g_k s_k + f'(x_k) \sum_i \gamma_{ki} u_i, \quad
        \frac{\partial L}{\partial \beta_i} = \sum u_i, \quad
        \frac{\partial L}{\partial \gamma_{ji}} = \sum f(x_j) u_i

    (with ``rectify``, x is max(x, 0) and dL/dx is 0 where x < 0). One fused pass per
    block of positions; the parameter sums are float64, added in a fixed order, so the
    results do not depend on the thread count. f'(0) is taken as 0 (for ``alpha=1``, the
    subgradient). No optimizer: apply the gradients as you like.

    Parameters
    ----------
    inputs : array_like of shape (N, ..., C) or (N, C, ...)
    beta, gamma
        Effective parameters, as in :func:`cgdn.apply_gdn`.
    grad_outputs : array_like
        dL/dy, of the inputs' shape.
    inverse, rectify, alpha, epsilon, data_format, num_threads
        As in :func:`cgdn.apply_gdn`.

    Returns
    -------
    grad_inputs : ndarray
        dL/dx, the inputs' shape and dtype.
    grad_beta : ndarray of shape (C,)
    grad_gamma : ndarray of shape (C, C)
        In TF orientation ``[in, out]``; float64 for float64 inputs, float32 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> x = np.array([[1.0, 2.0]])
    >>> beta, gamma = np.ones(2), np.array([[0.1, 0.0], [0.3, 0.2]])
    >>> gx, gb, gg = cgdn.gdn_vjp(x, beta, gamma, np.ones_like(x))
    >>> h = 1e-6   # central difference of sum(y) in x[0, 0]
    >>> fd = (cgdn.apply_gdn(x + [[h, 0]], beta, gamma).sum()
    ...       - cgdn.apply_gdn(x - [[h, 0]], beta, gamma).sum()) / (2 * h)
    >>> bool(np.isclose(gx[0, 0], fd, rtol=1e-8))
    True
    """
    source, beta, gamma, alpha, epsilon, rectify = _common(
        inputs, beta, gamma, data_format, alpha, epsilon, rectify)
    x, axis = source.x, source.axis
    inverse = check_flag("inverse", inverse)
    dtype = compute_dtype(x.dtype)
    g = as_input_array(grad_outputs, min_rank=2, name="grad_outputs")
    if g.shape != x.shape:
        raise ValueError(f"grad_outputs must have the inputs' shape {x.shape}, got {g.shape}")
    num_threads = effective_num_threads(num_threads)
    rows, g_rows = _rows(x, axis, dtype), _rows(g, axis, dtype)
    n_rows, n_channels = rows.shape
    block = _blocks(n_rows)
    n_blocks = -(-n_rows // block)
    grad_rows = np.empty_like(rows)
    part_beta = np.zeros((max(1, n_blocks), n_channels))
    part_gamma = np.zeros((max(1, n_blocks), n_channels, n_channels))
    _core.density_vjp(_isa.kernels, rows, beta, gamma, g_rows, grad_rows, part_beta,
                      part_gamma, block, alpha, epsilon, inverse, rectify,
                      max(1, min(num_threads, max(1, n_blocks))))
    grad_beta = np.zeros(n_channels)
    grad_gamma = np.zeros((n_channels, n_channels))
    for b in range(n_blocks):    # fixed order
        grad_beta += part_beta[b]
        grad_gamma += part_gamma[b]
    return (_unrows(grad_rows, x.shape, axis).astype(x.dtype, copy=False),
            grad_beta.astype(dtype), grad_gamma.astype(dtype))


def _lower_bound_grad(raw, bound, grad_value):
    """TensorFlow's gradient of max(raw, bound): passes where raw >= bound, or where it
    points raw upwards (a descent step raw -= lr * grad increases raw when grad < 0)."""
    return np.where((raw >= bound) | (grad_value < 0), grad_value, 0.0)


def gdn_grads(inputs, grad_outputs, *, name, store=None, inverse=False, rectify=False,
              alpha=2.0, epsilon=0.5, beta_min=1e-6, reparam_offset=2.0**-18,
              data_format="channels_last", num_threads=None):
    r"""Gradients for the stored variables of a GDN layer (the raw ``reparam_beta`` and
    ``reparam_gamma`` of :func:`cgdn.gdn`), and dL/dx.

    With :math:`p` = ``reparam_offset**2`` and bound :math:`b`, the effective value is
    :math:`\max(v, b)^2 - p`, so :math:`\partial L/\partial v = 2 \max(v, b)\,
    \partial L/\partial \mathrm{effective}` where the gradient passes through the bound
    by TensorFlow's rule: where :math:`v \ge b`, or where it points :math:`v` upwards
    (negative gradient). cgdn never applies the gradients.

    Parameters
    ----------
    inputs, grad_outputs
        As in :func:`gdn_vjp`.
    name : str
        The layer's scope in the store (``"gdn"``, ``"encoder/gdn_1"``, ...).
    store : parameter store, optional
        The default store if None.
    inverse, rectify, alpha, epsilon, beta_min, reparam_offset, data_format, num_threads
        The layer's settings, as given to :func:`cgdn.gdn`.

    Returns
    -------
    grad_inputs : ndarray
    grads : dict
        ``{"<name>/reparam_beta": array, "<name>/reparam_gamma": array}``, each of its
        variable's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> x = np.linspace(-2, 2, 24).reshape(1, 2, 3, 4)
    >>> y = cgdn.gdn(x, name="g", store=store)
    >>> gx, grads = cgdn.gdn_grads(x, 2 * y, name="g", store=store)   # L = sum(y**2)
    >>> sorted(grads)
    ['g/reparam_beta', 'g/reparam_gamma']
    >>> float(grads["g/reparam_beta"][0]) < 0      # a larger beta shrinks y
    True
    """
    store = check_store(store)
    beta_min = check_positive_real("beta_min", beta_min, allow_zero=True)
    reparam_offset = check_positive_real("reparam_offset", reparam_offset)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    names = f"{name}/{BETA}", f"{name}/{GAMMA}"
    with store.lock():
        missing = [n for n in names if n not in store]
        if missing:
            raise ValueError(f"no variable {missing[0]} in the store: create the layer first "
                             f"(cgdn.gdn or cgdn.GDN)")
        raw_beta, raw_gamma = store[names[0]], store[names[1]]
    beta = reparam_value(raw_beta, beta_min, reparam_offset, np.float64)
    gamma = reparam_value(raw_gamma, 0.0, reparam_offset, np.float64)
    grad_x, grad_beta, grad_gamma = gdn_vjp(
        inputs, beta, gamma, grad_outputs, inverse=inverse, rectify=rectify, alpha=alpha,
        epsilon=epsilon, data_format=data_format, num_threads=num_threads)
    grads = {}
    for var, raw, minimum, grad in ((names[0], raw_beta, beta_min, grad_beta),
                                    (names[1], raw_gamma, 0.0, grad_gamma)):
        raw64 = np.asarray(raw, np.float64)
        bound = math.sqrt(minimum + reparam_offset**2)
        upstream = 2.0 * np.maximum(raw64, bound) * np.asarray(grad, np.float64)
        grads[var] = _lower_bound_grad(raw64, bound, upstream).astype(raw.dtype)
    return grad_x, grads
