"""Reparameterization of GDN variables and the names they are stored under.

A GDN layer stores raw variables; its effective parameters are derived from them on
every use (TensorFlow contrib, tensorflow-compression and CompressAI all do this):

    effective = max(raw, sqrt(minimum + p))**2 - p,     p = reparam_offset**2

with ``minimum`` = ``beta_min`` for beta, 0 for gamma, and, for the trained exponents of
tensorflow-compression, 1 for alpha and 1e-6 for epsilon.
"""
import math

import numpy as np

# Leaf names of a layer's variables: "<scope>/reparam_beta", ...
BETA = "reparam_beta"
GAMMA = "reparam_gamma"
ALPHA = "reparam_alpha"        # optional: a trained alpha (tensorflow-compression)
EPSILON = "reparam_epsilon"    # optional: a trained epsilon
LEAVES = (BETA, GAMMA, ALPHA, EPSILON)

# Lower bounds of the trained exponents, as tensorflow-compression sets them.
ALPHA_MIN = 1.0
EPSILON_MIN = 1e-6


def reparam_init(value, reparam_offset, dtype=np.float64):
    """Stored variable for an effective value: ``sqrt(max(value + p, p))``, ``p = offset**2``.

    Computed in ``dtype``, with the pedestal cast from Python double as TensorFlow does.

    Examples
    --------
    >>> import numpy as np
    >>> from cgdn.params import reparam_init, reparam_value
    >>> raw = reparam_init(np.ones(2), 2.0**-18, np.float32)
    >>> reparam_value(raw, 1e-6, 2.0**-18, np.float32)
    array([1., 1.], dtype=float32)
    """
    pedestal = np.asarray(reparam_offset**2, dtype=dtype)
    value = np.asarray(value, dtype=dtype)
    return np.sqrt(np.maximum(value + pedestal, pedestal))


def reparam_value(variable, minimum, reparam_offset, dtype=np.float64):
    """Effective value of a stored variable: ``max(variable, sqrt(minimum + p))**2 - p``.

    ``p = reparam_offset**2``. The bound and the pedestal are computed in Python double
    and cast to ``dtype``; the rest runs in ``dtype``. The result is never below
    ``minimum`` (up to rounding) and is bit-identical to TensorFlow's.

    Examples
    --------
    >>> from cgdn.params import reparam_value
    >>> reparam_value([-1.0, 0.5], minimum=0.0, reparam_offset=2.0**-18).tolist()
    [0.0, 0.25]
    """
    pedestal = reparam_offset**2
    bound = np.asarray(math.sqrt(minimum + pedestal), dtype=dtype)
    variable = np.asarray(variable, dtype=dtype)
    return np.maximum(variable, bound) ** 2 - np.asarray(pedestal, dtype=dtype)


def initial_variables(n_channels, gamma_init, reparam_offset, dtype):
    """TF's initial ``(reparam_beta, reparam_gamma)``: effective beta = 1, gamma = init * I."""
    pedestal = np.asarray(reparam_offset**2, dtype=dtype)
    beta = np.sqrt(np.ones(n_channels, dtype=dtype) + pedestal)
    gamma = np.sqrt(gamma_init * np.eye(n_channels, dtype=dtype) + pedestal)
    return beta, gamma.astype(dtype, copy=False)


def gdn_layers(arrays, source):
    """``{scope: {leaf: array}}`` for the GDN layers among named arrays, checked.

    Every ``<scope>/reparam_beta`` ``(C,)`` needs a ``<scope>/reparam_gamma`` ``(C, C)``
    and back; ``reparam_alpha`` / ``reparam_epsilon``, when present, are scalars of a
    scope that has both. ``ValueError`` naming ``source`` otherwise.
    """
    scopes = {}
    for name, arr in arrays.items():
        scope, _, leaf = name.rpartition("/")
        if leaf in LEAVES:
            scopes.setdefault(scope, {})[leaf] = arr
    for scope, layer in scopes.items():
        if BETA not in layer or GAMMA not in layer:
            missing = GAMMA if BETA in layer else BETA
            raise ValueError(f"{source}: {scope}/{missing} is missing")
        beta, gamma = layer[BETA], layer[GAMMA]
        c = beta.shape[0] if beta.ndim == 1 else -1
        if beta.ndim != 1 or gamma.shape != (c, c):
            raise ValueError(
                f"{source}: {scope} needs reparam_beta (C,) and reparam_gamma (C, C), got "
                f"{beta.shape} and {gamma.shape}"
            )
        for leaf in (ALPHA, EPSILON):
            if leaf in layer and layer[leaf].size != 1:
                raise ValueError(
                    f"{source}: {scope}/{leaf} must be a scalar, got shape {layer[leaf].shape}"
                )
    return scopes


def trained_exponents(layer, reparam_offset, dtype=np.float64):
    """``(alpha, epsilon)`` of a layer's trained exponents as floats (None where absent)."""
    values = []
    for leaf, minimum in ((ALPHA, ALPHA_MIN), (EPSILON, EPSILON_MIN)):
        raw = layer.get(leaf)
        values.append(None if raw is None else float(
            reparam_value(np.reshape(raw, ()), minimum, reparam_offset, dtype)))
    return tuple(values)
