"""Public GDN entry points: validation, dtype and layout dispatch, ``out=``, threads."""
import numpy as np

from cgdn import _dask, _isa
from cgdn._reparam import ALPHA, EPSILON, reparam_value, trained_exponents
from cgdn._scopes import check_reuse, check_scope_name, resolve_layer
from cgdn._store import check_store
from cgdn._threads import effective_num_threads, lazy_threads
from cgdn._validation import (
    check_flag,
    check_lazy_extras,
    check_out,
    check_parameters,
    check_positive_real,
    compute_dtype,
    read_input,
)


def apply_gdn(inputs, beta, gamma, *, inverse=False, rectify=False, alpha=2.0,
              epsilon=0.5, data_format="channels_last", out=None, num_threads=None):
    r"""Apply GDN (or IGDN) with given effective parameters.

    Computes, independently at every position (batch index and spatial index),

    .. math:: y_i = x_i / \left(\beta_i + \sum_j \gamma_{ji} |x_j|^\alpha\right)^\epsilon

    (``inverse=True`` multiplies instead of dividing). This is the store-free
    primitive behind :func:`cgdn.gdn`.

    Parameters
    ----------
    inputs : array_like of shape (N, ..., C) or (N, C, ...)
        Input of rank >= 2, float16, float32 or float64. The channel axis is given
        by ``data_format``. float16 is computed in float32 and returned as float16.
        Floats stored in the other byte order are read through a native copy.
    beta : array_like of shape (C,)
        Effective beta: finite and non-negative.
    gamma : array_like of shape (C, C)
        Effective gamma in TensorFlow's orientation: ``gamma[j, i]`` weighs input
        channel ``j`` in the pool of output channel ``i``. Finite and non-negative.
        (PyTorch ports store the transpose.)
    inverse : bool, default False
        Compute IGDN (``x * pool ** epsilon``) instead of GDN.
    rectify : bool, default False
        Replace ``x`` by ``max(x, 0)`` first, in the pool and in the numerator.
    alpha : float, default 2.0
        Exponent of ``|x|`` in the pool; must be > 0.
    epsilon : float, default 0.5
        Exponent of the pool; must be > 0. ``alpha=2, epsilon=0.5`` is classic GDN,
        ``alpha=1, epsilon=1`` the simplified GDN of Johnston et al. (2019).
    data_format : {'channels_last', 'channels_first'}, default 'channels_last'
        Whether channels are the last axis or axis 1.
    out : ndarray, optional
        Destination with the result's shape and dtype; may be ``inputs`` itself
        (in place). When ``out`` partly overlaps ``inputs``, the input is copied
        first, so the result is still correct.
    num_threads : int, optional
        The most threads the call uses (fewer when there are fewer tiles). None: the
        OpenMP default (honours ``OMP_NUM_THREADS`` and ``threadpoolctl``'s OpenMP
        limits); negative values count back from all cores (-1 = all).

    Returns
    -------
    ndarray
        The result, of the input's shape and dtype, in the native byte order (``out``
        if it was given).

    Raises
    ------
    TypeError
        If ``inputs`` is not float16/32/64, ``out`` has the wrong dtype, or an
        argument has the wrong type.
    ValueError
        If ``data_format`` is unknown, the rank is below 2, there are no channels,
        ``beta``/``gamma`` have the wrong shape or are negative or non-finite,
        ``alpha``/``epsilon`` are not positive, ``out`` has the wrong shape or is
        read-only, or ``num_threads`` is 0.

    See Also
    --------
    cgdn.gdn : the TensorFlow-style layer with stored, reparameterized variables.

    Notes
    -----
    Results are identical for any ``num_threads``. NaN or Inf in one position only
    affects that position.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> x = np.array([[3.0, 4.0], [0.0, -2.0]])
    >>> y = cgdn.apply_gdn(x, beta=[1.0, 1.0], gamma=0.1 * np.eye(2))
    >>> np.allclose(y, x / np.sqrt(1 + 0.1 * x**2))
    True
    >>> z = cgdn.apply_gdn(y, [1.0, 1.0], 0.1 * np.eye(2), inverse=True)
    >>> np.round(z[0], 3)  # one IGDN step undoes GDN only approximately
    array([2.642, 3.153])
    """
    # The plain case (ndarrays of one float dtype, bool flags, float exponents, ...) in
    # one call to the kernel module; None sends anything else through the general path.
    y = _isa.kernels.apply_plain(inputs, beta, gamma, inverse, rectify, alpha, epsilon,
                                 data_format, out, num_threads)
    if y is not None:
        return y
    source = read_input(inputs, min_rank=2, data_format=data_format)
    x = source.x
    beta, gamma = check_parameters(beta, gamma, source, compute_dtype(x.dtype))
    settings = dict(inverse=check_flag("inverse", inverse),
                    rectify=check_flag("rectify", rectify),
                    alpha=check_positive_real("alpha", alpha),
                    epsilon=check_positive_real("epsilon", epsilon),
                    data_format=source.data_format)
    if source.lazy:
        check_lazy_extras(out)
        return _dask.map_channel_blocks(apply_gdn, x, beta, gamma, axis=source.axis,
                                        num_threads=lazy_threads(num_threads), **settings)
    return normalize(x, beta, gamma, out=check_out(out, x.shape, x.dtype),
                     num_threads=effective_num_threads(num_threads), **settings)


def normalize(x, beta, gamma, *, inverse, rectify, alpha, epsilon, data_format, out,
              num_threads):
    """Run the kernels on validated arguments (beta/gamma already in the compute dtype)."""
    dtype = compute_dtype(x.dtype)
    shape = x.shape
    if x.size == 0:
        return out if out is not None else np.empty(shape, dtype=x.dtype)

    channels_last = data_format == "channels_last" or x.ndim == 2
    src = np.ascontiguousarray(x, dtype=dtype)
    writes_into_out = (
        out is not None and out.dtype == dtype and out.flags.c_contiguous
        and out.flags.aligned   # else computed apart and copied in, as for other layouts
    )
    dest = out if writes_into_out else np.empty(shape, dtype=dtype)
    if (writes_into_out and dest is not src and np.may_share_memory(dest, src)
            and not _same_view(dest, src)):
        src = src.copy()  # partial overlap: read from a copy, as NumPy ufuncs do

    # The kernel module picks the work units, runs the tiles on num_threads threads and
    # finishes any pixel whose pool overflowed or underflowed on the careful path.
    _isa.kernels.run(src, beta, gamma, dest, channels_last, alpha, epsilon, inverse, rectify,
                     min(num_threads, 1 << 20))

    if dest is out or (out is None and dest.dtype == x.dtype):
        return dest
    # float16 results beyond its range become +-inf, as astype makes them, silently.
    with np.errstate(over="ignore"):
        if out is not None:
            np.copyto(out, dest, casting="same_kind")
            return out
        if dest.dtype != x.dtype:
            return dest.astype(x.dtype)
    return dest


def _same_view(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def gdn(inputs, inverse=False, beta_min=1e-6, gamma_init=0.1, reparam_offset=2**-18,
        data_format="channels_last", activity_regularizer=None, trainable=True, name=None,
        reuse=None, *, rectify=False, alpha=2.0, epsilon=0.5, store=None, out=None,
        num_threads=None):
    r"""GDN layer with TensorFlow's ``tf.contrib.layers.gdn`` interface and semantics.

    Creates (or, with ``reuse``, finds) the variables ``<scope>/reparam_beta`` ``[C]``
    and ``<scope>/reparam_gamma`` ``[C, C]`` in a parameter store, derives the effective
    parameters from them on every call,

    .. math::
        \beta = \max(\text{reparam\_beta}, \sqrt{\text{beta\_min} + p})^2 - p, \quad
        \gamma = \max(\text{reparam\_gamma}, \text{reparam\_offset})^2 - p

    with the pedestal :math:`p = \text{reparam\_offset}^2`, and returns
    ``apply_gdn(inputs, beta, gamma, ...)``. Fresh variables give beta = 1 and
    gamma = ``gamma_init`` * I exactly.

    Parameters
    ----------
    inputs : array_like of shape (N, ..., C) or (N, C, ...)
        Rank >= 3 (as TensorFlow; use :func:`apply_gdn` for a (P, C) matrix), float16,
        float32 or float64. Variables are created in the compute dtype (float32 for
        float16 and float32 inputs, float64 for float64).
    inverse : bool, default False
        IGDN instead of GDN.
    beta_min : float, default 1e-6
        Lower bound of the effective beta; >= 0.
    gamma_init : float, default 0.1
        Initial effective gamma is ``gamma_init * I``; >= 0. Used only at creation.
    reparam_offset : float, default 2**-18
        Offset of the reparameterization; > 0.
    data_format : {'channels_last', 'channels_first'}, default 'channels_last'
    activity_regularizer : callable, optional
        ``activity_regularizer(outputs)`` returns a scalar; ``value / N`` (N = batch
        size, as TF 1.15) is appended to ``store.losses`` tagged with the layer scope.
        Nothing is appended for an empty batch.
    trainable : bool, default True
        Whether newly created variables are listed in ``store.trainable_variables``.
    name : str, optional
        Layer scope name. None gives ``gdn``, ``gdn_1``, ... (first free name per store
        and enclosing :func:`cgdn.variable_scope`).
    reuse : {None, False, True, cgdn.AUTO_REUSE}
        None/False: the layer must not exist yet. True: it must exist (and ``name`` is
        required). AUTO_REUSE: create when missing, share when present. A reusing
        enclosing :func:`cgdn.variable_scope` passes its reuse down.
    rectify, alpha, epsilon
        As in :func:`apply_gdn` (classic GDN: ``alpha=2, epsilon=0.5``).
    store : parameter store, optional
        Where variables live; the default store (:func:`cgdn.get_default_store`) if None.
    out, num_threads
        As in :func:`apply_gdn`.

    Returns
    -------
    ndarray
        Same shape and dtype as ``inputs`` (``out`` if given).

    Raises
    ------
    TypeError, ValueError
        For every invalid argument (as :func:`apply_gdn`), and for the reuse rules: an existing
        layer without reuse, a missing layer with ``reuse=True``, or a channel-count
        mismatch. All arguments are checked before anything is created: a failing call
        leaves the store exactly as it was.

    See Also
    --------
    apply_gdn : the same computation with effective parameters given directly.
    cgdn.variable_scope, cgdn.ParameterStore, cgdn.import_compressai

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> x = np.linspace(-3, 3, 2 * 4 * 4 * 8, dtype=np.float32).reshape(2, 4, 4, 8)
    >>> y = cgdn.gdn(x, store=store)                 # creates gdn/reparam_*
    >>> bool(np.allclose(y, x / np.sqrt(1 + 0.1 * x**2)))
    True
    >>> y2 = cgdn.gdn(x, name="gdn", reuse=True, store=store)   # shares them
    >>> z = cgdn.gdn(x, inverse=True, store=store)   # a new layer: gdn_1
    >>> list(store)
    ['gdn/reparam_beta', 'gdn/reparam_gamma', 'gdn_1/reparam_beta', 'gdn_1/reparam_gamma']
    """
    source = read_input(inputs, min_rank=3, data_format=data_format)
    x, lazy, data_format, n_channels = source.x, source.lazy, source.data_format, source.n_channels
    dtype = compute_dtype(x.dtype)
    inverse = check_flag("inverse", inverse)
    rectify = check_flag("rectify", rectify)
    trainable = check_flag("trainable", trainable)
    beta_min = check_positive_real("beta_min", beta_min, allow_zero=True)
    gamma_init = check_positive_real("gamma_init", gamma_init, allow_zero=True)
    reparam_offset = check_positive_real("reparam_offset", reparam_offset)
    alpha = check_positive_real("alpha", alpha)
    epsilon = check_positive_real("epsilon", epsilon)
    if activity_regularizer is not None and not callable(activity_regularizer):
        raise TypeError(
            "activity_regularizer must be a callable or None, got "
            f"{type(activity_regularizer).__name__}"
        )
    if name is not None:
        check_scope_name(name, "name")
    reuse = check_reuse(reuse)
    store = check_store(store, needs_losses=activity_regularizer is not None)
    if lazy:
        check_lazy_extras(out)
        if activity_regularizer is not None:
            raise ValueError("activity_regularizer needs the computed outputs: it cannot be "
                             "used with a Dask array (compute the loss from the result)")
    else:
        out = check_out(out, x.shape, x.dtype)
    task_threads = lazy_threads(num_threads)
    num_threads = effective_num_threads(num_threads)

    with store.lock():
        scope, raw_beta, raw_gamma, created = resolve_layer(
            store, name, reuse, n_channels, dtype, gamma_init=gamma_init,
            reparam_offset=reparam_offset, trainable=trainable,
            shape_hint=(x.shape, data_format),
        )
        trained = {leaf: store[f"{scope}/{leaf}"] for leaf in (ALPHA, EPSILON)
                   if f"{scope}/{leaf}" in store}
    try:
        trained_alpha, trained_epsilon = trained_exponents(trained, reparam_offset)
        alpha = alpha if trained_alpha is None else trained_alpha
        epsilon = epsilon if trained_epsilon is None else trained_epsilon
        beta = reparam_value(raw_beta, beta_min, reparam_offset, dtype)
        gamma = reparam_value(raw_gamma, 0.0, reparam_offset, dtype)
        if lazy:   # the graph carries the effective parameters of this moment
            return _dask.map_channel_blocks(
                apply_gdn, x, beta, gamma, axis=source.axis, num_threads=task_threads,
                inverse=inverse, rectify=rectify, alpha=alpha, epsilon=epsilon,
                data_format=data_format)
        outputs = normalize(  # reparam_value returns fresh C-contiguous arrays
            x, beta, gamma, inverse=inverse,
            rectify=rectify, alpha=alpha, epsilon=epsilon, data_format=data_format,
            out=out, num_threads=num_threads,
        )
        if activity_regularizer is not None and outputs.shape[0] > 0:
            store.add_loss(_regularization_loss(activity_regularizer, outputs), scope=scope)
    except BaseException:
        with store.lock():
            for created_name in created:
                del store[created_name]
        raise
    return outputs


def _regularization_loss(regularizer, outputs):
    value = np.asarray(regularizer(outputs))
    if value.size != 1 or value.dtype.kind not in "biuf":
        raise ValueError(
            "activity_regularizer must return a real scalar, got "
            f"{value.dtype} array of shape {value.shape}"
        )
    return float(value.reshape(())) / outputs.shape[0]
