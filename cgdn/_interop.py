"""Model interop without TensorFlow or PyTorch: importers of variable mappings and state
dicts, exporters, and the one-call converters of whole models to cgdn layers.

Everything here is duck-typed: objects are recognized by the attributes they have, and
tensors are converted through ``detach()`` / ``cpu()`` / ``numpy()`` / ``__array__``.
cgdn never imports torch or tensorflow.
"""
import math
import re

import numpy as np

from cgdn._reparam import (ALPHA, ALPHA_MIN, BETA, EPSILON, EPSILON_MIN, GAMMA, LEAVES,
                           gdn_layers, reparam_value)
from cgdn._scopes import check_name, check_scope_name
from cgdn._store import ParameterStore, check_store, check_variable_value


def as_numpy(value, key):
    """A finite float array from a NumPy array, a (CPU) torch tensor, a TF variable or
    tensor, an h5py dataset, or anything ``np.asarray`` takes."""
    if hasattr(value, "detach"):      # torch: drop the autograd graph, move to the CPU
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()         # TF variables and eager tensors
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{key}: cannot be read as a NumPy array: {exc}") from None
    return check_variable_value(key, arr)


def _scope_prefix(prefix):
    """``prefix`` as a scope ending in '/' ('' for none): ``"enc"`` and ``"enc/"`` both
    give ``"enc/"``."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    prefix = prefix.rstrip("/")
    if not prefix:
        return ""
    check_scope_name(prefix, "prefix")
    return prefix + "/"


def _no_layers_error(source, keys):
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
    return ValueError(
        f"no GDN layers found in {source} ({len(keys)} entries: {shown or 'none'})"
    )


def _commit(store, arrays, trainable):
    """Create or assign ``arrays`` in ``store``, all or nothing."""
    with store.lock():
        for name, arr in arrays.items():
            if name in store and store[name].shape != arr.shape:
                raise ValueError(
                    f"cannot import {name!r}: the store holds shape {store[name].shape}, "
                    f"the source {arr.shape}"
                )
        for name, arr in arrays.items():
            if name in store:
                store[name] = arr
            else:
                store.create(name, arr, trainable=trainable)


# --------------------------------------------------------------------------------------
# TensorFlow variables

_TF2_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
_TF2_PARAMETER = re.compile(r"_?(alpha|beta|gamma|epsilon)_parameter")


def tf_variable_name(key):
    """The cgdn variable name (``<scope>/reparam_<leaf>``) of a TensorFlow key, or None.

    Understands TF1 names (``<scope>/reparam_beta:0``), Keras ``.h5`` paths
    (``model_weights/gdn/gdn/reparam_beta:0``) and TF2 object-checkpoint keys
    (``<path>/_beta_parameter/variable/.ATTRIBUTES/VARIABLE_VALUE``).
    """
    if not isinstance(key, str):
        return None
    if key.endswith(_TF2_VALUE):
        parts = key[: -len(_TF2_VALUE)].split("/")
        if len(parts) >= 3 and parts[-1] == "variable":
            match = _TF2_PARAMETER.fullmatch(parts[-2])
            if match:
                return "/".join(parts[:-2] + [f"reparam_{match.group(1)}"])
        return None
    name = re.sub(r":\d+$", "", key)
    parts = name.split("/")
    if parts[-1] not in LEAVES or len(parts) < 2:
        return None
    if parts[0] == "model_weights":          # a whole-model .h5 file
        parts = parts[1:]
    if len(parts) >= 3 and parts[0] == parts[1]:   # .h5: <layer>/<layer>/<weight>
        parts = parts[1:]
    return "/".join(parts)


def import_tf_variables(variables, store=None, *, prefix="", trainable=True):
    """Import GDN variables from a TensorFlow-style mapping of name -> array.

    Every ``<scope>/reparam_beta`` and ``<scope>/reparam_gamma`` (and the trained
    ``reparam_alpha`` / ``reparam_epsilon`` of tensorflow-compression layers) is created
    in ``store`` under ``prefix/<scope>``, or assigned if it exists with the same shape.
    Other names (kernels, biases, optimizer slots, ...) are ignored. Keys may be TF1
    variable names (an optional ``:0`` suffix is dropped), Keras ``.h5`` paths
    (``model_weights/gdn/gdn/reparam_beta:0``) or TF2 object-checkpoint keys as
    ``tf.train.load_checkpoint(path)`` lists them
    (``<path>/_beta_parameter/variable/.ATTRIBUTES/VARIABLE_VALUE``, scope ``<path>``).
    All or nothing: on any error the store is unchanged.

    A layer scope that holds trained exponents uses them: :func:`cgdn.gdn` and
    :class:`cgdn.GDN` take alpha and epsilon from the stored values there.

    Parameters
    ----------
    variables : mapping of str to array_like
        E.g. ``{n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}``
        or the datasets of an ``h5py`` file.
    store : parameter store, optional
        Defaults to the default store.
    prefix : str, default ''
        A scope to put the layers in: ``prefix="enc"`` gives ``enc/<scope>``.
    trainable : bool, default True
        Whether newly created variables are listed as trainable.

    Returns
    -------
    list of str
        The imported layer scopes, in the order found.

    Raises
    ------
    ValueError
        If no GDN variables are found (the message lists some of the keys seen), a
        layer is incomplete, or shapes disagree with the store.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> ckpt = {"analysis/gdn_0/reparam_beta:0": np.ones(2),
    ...         "analysis/gdn_0/reparam_gamma:0": np.eye(2),
    ...         "analysis/conv_0/kernel:0": np.zeros((3, 3, 2, 2))}
    >>> cgdn.import_tf_variables(ckpt, store, prefix="enc")
    ['enc/analysis/gdn_0']
    """
    store = check_store(store)
    prefix = _scope_prefix(prefix)
    if not hasattr(variables, "items"):
        raise TypeError(f"variables must be a mapping of names to arrays, got "
                        f"{type(variables).__name__}")
    arrays = {}
    for key, value in variables.items():
        name = tf_variable_name(key)
        if name is not None:
            full = check_name(prefix + name)
            if full in arrays:
                raise ValueError(f"variables: two keys map to {full!r} (one is {key!r})")
            arrays[full] = as_numpy(value, key)
    if not arrays:
        raise _no_layers_error("variables", variables.keys())
    scopes = gdn_layers(arrays, source="variables")
    _commit(store, arrays, trainable)
    return list(scopes)


# --------------------------------------------------------------------------------------
# CompressAI state dicts

_BUFFERS = ("beta_reparam.pedestal", "beta_reparam.lower_bound.bound",
            "gamma_reparam.pedestal", "gamma_reparam.lower_bound.bound")


def _compressai_prefixes(state_dict):
    prefixes = []
    for key in state_dict:
        if not isinstance(key, str):
            continue
        if key == "beta" and "gamma" in state_dict:
            prefixes.append("")
        elif key.endswith(".beta") and key[: -len(".beta")] + ".gamma" in state_dict:
            prefixes.append(key[: -len(".beta")])
    return prefixes


def _key(p, leaf):
    return f"{p}.{leaf}" if p else leaf


def _buffer(state_dict, key):
    """``(value, dtype)`` of a scalar buffer, or ``(None, None)`` when absent."""
    if key not in state_dict:
        return None, None
    value = as_numpy(state_dict[key], key)
    if value.size != 1:
        raise ValueError(f"{key} must be a scalar buffer, got shape {value.shape}")
    return float(value.reshape(())), value.dtype


def _round_like(value, dtype):
    # bound**2 - pedestal carries the rounding of the buffer's dtype: 7 significant
    # digits for float32, 16 for float64. Rounded a little below that, 1e-6 comes back
    # as 1e-6, not as 1.0000001e-06 or 9.999999999999997e-07.
    return float(f"{value:.6e}") if dtype != np.float64 else float(f"{value:.13e}")


def compressai_settings(state_dict, p):
    """``beta_min`` and ``reparam_offset`` implied by a layer's buffers (defaults if absent)."""
    beta_pedestal, _ = _buffer(state_dict, _key(p, "beta_reparam.pedestal"))
    gamma_pedestal, _ = _buffer(state_dict, _key(p, "gamma_reparam.pedestal"))
    beta_bound, bound_dtype = _buffer(state_dict, _key(p, "beta_reparam.lower_bound.bound"))
    gamma_bound, gamma_dtype = _buffer(state_dict, _key(p, "gamma_reparam.lower_bound.bound"))
    pedestals = [v for v in (beta_pedestal, gamma_pedestal) if v is not None]
    if len(pedestals) == 2 and not math.isclose(*pedestals, rel_tol=1e-6):
        raise ValueError(f"{p or 'state dict'}: beta and gamma pedestals differ: {pedestals}")
    if pedestals and not pedestals[0] > 0:
        raise ValueError(f"{p or 'state dict'}: pedestal must be > 0, got {pedestals[0]}")
    offset = math.sqrt(pedestals[0]) if pedestals else 2.0**-18
    beta_min = 1e-6
    if beta_bound is not None:
        beta_min = _round_like(max(0.0, beta_bound**2 - offset**2), bound_dtype)
    if gamma_bound is not None:
        gamma_min = _round_like(max(0.0, gamma_bound**2 - offset**2), gamma_dtype)
        if gamma_min > 0:
            raise ValueError(
                f"{p or 'state dict'}: the gamma bound {gamma_bound} implies a gamma minimum "
                f"of {gamma_min}; cgdn layers bound gamma at 0 (the bound must be the offset)"
            )
    return {"beta_min": beta_min, "reparam_offset": offset}


def _compressai_pair(state_dict, p):
    beta = as_numpy(state_dict[_key(p, "beta")], _key(p, "beta"))
    gamma = as_numpy(state_dict[_key(p, "gamma")], _key(p, "gamma"))
    c = beta.shape[0] if beta.ndim == 1 else -1
    if gamma.ndim == 4 and gamma.shape[2:] == (1, 1):  # conv weight [out, in, 1, 1]
        gamma = gamma[:, :, 0, 0]
    if beta.ndim != 1 or gamma.shape != (c, c):
        raise ValueError(
            f"{p or 'state dict'}: beta must be (C,) and gamma (C, C), got {beta.shape} "
            f"and {gamma.shape}"
        )
    return beta, np.ascontiguousarray(gamma.T)     # PyTorch [out, in] -> TF [in, out]


def _scope_of(prefix, p):
    return check_name(prefix + (p.replace(".", "/") if p else "gdn"))


def import_compressai(state_dict, store=None, *, prefix="", trainable=True):
    """Import the GDN / IGDN / GDN1 layers of a CompressAI-style state dict.

    Every pair ``<p>.beta`` (shape ``[C]``) and ``<p>.gamma`` (``[C, C]``, PyTorch's
    ``[out, in]`` conv orientation) becomes ``<scope>/reparam_beta`` and
    ``<scope>/reparam_gamma`` (transposed to TF's ``[in, out]``) where ``<scope>`` is
    ``p`` with dots replaced by ``/`` (``g_a.1`` -> ``g_a/1``), inside the scope
    ``prefix``. Values are imported as stored (the raw reparameterized domain, like TF's
    variables). A whole model's state dict can be passed; other entries are ignored.

    The buffers ``<p>.beta_reparam.pedestal``, ``<p>.beta_reparam.lower_bound.bound`` and
    ``<p>.gamma_reparam.pedestal`` are honoured when present: the ``beta_min`` and
    ``reparam_offset`` they imply are returned. A state dict does not say whether a
    layer is GDN, IGDN or GDN1: :func:`cgdn.from_compressai` on the model object does,
    and returns ready layers.

    Parameters
    ----------
    state_dict : mapping of str to array_like (NumPy arrays or CPU torch tensors)
    store : parameter store, optional
    prefix : str, default ''
        A scope for the layers (``prefix="enc"`` gives ``enc/g_a/1``).
    trainable : bool, default True

    Returns
    -------
    dict
        ``{scope: {"beta_min": float, "reparam_offset": float, "n_channels": int}}``.

    Raises
    ------
    ValueError
        If the state dict holds no GDN layer (the message lists some keys), shapes
        disagree, values are not finite, or a layer's buffers disagree with each other.
        The store is then unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> sd = {"g_a.1.beta": np.ones(2), "g_a.1.gamma": np.array([[1.0, 0.5], [0.0, 1.0]]),
    ...       "g_a.0.weight": np.zeros((2, 3, 5, 5))}
    >>> store = cgdn.ParameterStore()
    >>> cgdn.import_compressai(sd, store)
    {'g_a/1': {'beta_min': 1e-06, 'reparam_offset': 3.814697265625e-06, 'n_channels': 2}}
    >>> store["g_a/1/reparam_gamma"]          # transposed: TF's [in, out]
    array([[1. , 0. ],
           [0.5, 1. ]])
    """
    store = check_store(store)
    prefix = _scope_prefix(prefix)
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a mapping of names to arrays, got "
                        f"{type(state_dict).__name__}")
    arrays, report = {}, {}
    for p in _compressai_prefixes(state_dict):
        beta, gamma = _compressai_pair(state_dict, p)
        scope = _scope_of(prefix, p)
        arrays[f"{scope}/{BETA}"] = beta
        arrays[f"{scope}/{GAMMA}"] = gamma
        report[scope] = {**compressai_settings(state_dict, p), "n_channels": beta.shape[0]}
    if not report:
        raise _no_layers_error("state_dict", state_dict.keys())
    _commit(store, arrays, trainable)
    return report


# --------------------------------------------------------------------------------------
# Export to CompressAI

def _layer_items(source):
    """``[(module path, layer)]`` of a layer, a dict or a list of layers, or None."""
    from cgdn._layer import GDN, _as_layer_dict

    if isinstance(source, GDN):
        return [("", source)]
    if isinstance(source, dict) and source and all(isinstance(v, GDN) for v in source.values()):
        return list(source.items())
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("no layers to export: the list is empty")
        return [(name.replace("/", "."), layer)
                for name, layer in _as_layer_dict(list(source)).items()]
    return None


def _store_bound(scope, beta_min, reparam_offset):
    """``(beta_min, reparam_offset)`` of a store's layer, from the argument given."""
    value = beta_min.get(scope) if isinstance(beta_min, dict) else beta_min
    if isinstance(value, dict):          # an import_compressai report entry
        return float(value["beta_min"]), float(value.get("reparam_offset", reparam_offset))
    if value is None:
        raise ValueError(
            f"the bound of layer {scope!r} is not known: a store holds the raw variables "
            f"only, so pass beta_min= (a float, a dict of scope to float, or the report "
            f"import_compressai returned; TensorFlow's and CompressAI's default is 1e-6), "
            f"or export the layers of cgdn.from_compressai / cgdn.load_layers, which keep "
            f"their settings")
    return float(value), reparam_offset


def _layers_to_export(source, scopes, beta_min, reparam_offset):
    """``[(prefix, raw beta, raw gamma, beta_min, offset, layer or None)]``."""
    items = _layer_items(source)
    if items is not None:
        if scopes is not None:
            raise TypeError("scopes= selects layers of a store; pass a dict of layers instead")
        return [(key, layer.reparam_beta, layer.reparam_gamma, layer.beta_min,
                 layer.reparam_offset, layer) for key, layer in items]
    store = check_store(source)
    with store.lock():
        layers = gdn_layers({name: store[name] for name in store}, source="store")
    if scopes is None:
        scopes = list(layers)
    if not scopes:
        raise ValueError("the store holds no GDN layers to export")
    result = []
    for scope in scopes:
        if scope not in layers:
            raise ValueError(f"no GDN layer {scope!r} in the store; it has {list(layers)}")
        if ALPHA in layers[scope] or EPSILON in layers[scope]:
            raise ValueError(f"layer {scope!r} has trained alpha/epsilon, which CompressAI's "
                             f"GDN cannot hold")
        bmin, offset = _store_bound(scope, beta_min, reparam_offset)
        result.append((scope.replace("/", "."), layers[scope][BETA], layers[scope][GAMMA],
                       bmin, offset, None))
    return result


def _as_torch(arrays):
    import torch   # only asked for with as_torch=True

    return {key: torch.from_numpy(value) for key, value in arrays.items()}


def export_compressai(source=None, *, scopes=None, beta_min=None, reparam_offset=2.0**-18,
                      dtype=None, as_torch=False):
    """Export layers as a CompressAI ``GDN`` / ``GDN1`` state dict.

    For each layer ``<p>`` the keys ``<p>.beta``, ``<p>.gamma`` (transposed to PyTorch's
    ``[out, in]``) and the four reparameterization buffers
    (``<p>.beta_reparam.pedestal``, ``<p>.beta_reparam.lower_bound.bound``,
    ``<p>.gamma_reparam.pedestal``, ``<p>.gamma_reparam.lower_bound.bound``, shape
    ``(1,)`` as CompressAI registers them) are written. With ``as_torch=True`` the
    values are torch tensors, which ``module.load_state_dict(state, strict=True)`` of a
    lone GDN module accepts; :func:`cgdn.torch.load_into` loads the layers of a whole
    model. :func:`import_compressai` of the result restores the values exactly.

    Parameters
    ----------
    source : cgdn.GDN, dict or list of cgdn.GDN, or parameter store, optional
        Layers (each with its own ``beta_min`` and ``reparam_offset``; dict keys are
        the module paths, ``""`` for a lone module; in a list, layer names with ``/``
        turned into ``.``, unnamed ones ``gdn``, ``gdn_1``, ... as in
        :func:`cgdn.save_layers`) or a store (the default store if None), whose layers
        ``a/b`` become ``a.b``.
    scopes : list of str, optional
        For a store: the layers to export (all by default).
    beta_min : float or dict, optional
        For a store, which holds raw variables only: the bound of the effective beta,
        one float for all layers or a dict of scope to float, or the report
        :func:`import_compressai` returned (which gives each layer's ``beta_min`` and
        ``reparam_offset``). Required for a store: a bound the export does not know is
        refused rather than guessed (a wrong bound changes a model's outputs).
    reparam_offset : float, default 2**-18
        For a store: the offset (``pedestal = reparam_offset**2``) where ``beta_min``
        does not give it.
    dtype : dtype, optional
        dtype of the buffers; that of each layer's variables by default.
    as_torch : bool, default False
        Torch tensors (sharing memory with the arrays) instead of NumPy arrays; imports
        torch.

    Returns
    -------
    dict of str to ndarray (or torch.Tensor)

    Raises
    ------
    ValueError
        If a layer cannot be expressed by CompressAI's modules (rectify, trained or
        general exponents: only GDN ``alpha=2, epsilon=0.5`` and GDN1 ``alpha=1,
        epsilon=1``), a store holds no layers, or a store's layer has no ``beta_min``.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> sd = cgdn.export_compressai({"g_a.1": cgdn.GDN(2, beta_min=1e-2)})
    >>> sorted(sd)[:3]
    ['g_a.1.beta', 'g_a.1.beta_reparam.lower_bound.bound', 'g_a.1.beta_reparam.pedestal']
    >>> sd["g_a.1.beta_reparam.lower_bound.bound"].shape
    (1,)
    >>> store = cgdn.ParameterStore()
    >>> report = cgdn.import_compressai(sd, store)
    >>> again = cgdn.export_compressai(store, beta_min=report)     # the bound it imported
    >>> bool(again["g_a.1.beta_reparam.lower_bound.bound"] == sd["g_a.1.beta_reparam.lower_bound.bound"])
    True
    """
    if not isinstance(as_torch, bool):
        raise TypeError(f"as_torch must be True or False, got {as_torch!r}")
    result = {}
    for p, beta, gamma, bmin, offset, layer in _layers_to_export(
            source, scopes, beta_min, reparam_offset):
        if layer is not None:
            modes = {(2.0, 0.5), (1.0, 1.0)}
            if layer.rectify or (layer.alpha, layer.epsilon) not in modes or any(
                    leaf.endswith((ALPHA, EPSILON)) for leaf in layer.variables):
                raise ValueError(
                    f"layer {p!r} ({layer!r}) cannot be expressed by CompressAI's GDN/GDN1: "
                    f"they have no rectify and fixed exponents (2, 0.5) or (1, 1)"
                )
        buf_dtype = np.dtype(dtype) if dtype is not None else beta.dtype
        pedestal = offset**2
        result[_key(p, "beta")] = np.array(beta)
        result[_key(p, "gamma")] = np.ascontiguousarray(gamma.T)
        values = (pedestal, math.sqrt(bmin + pedestal), pedestal, math.sqrt(pedestal))
        for leaf, value in zip(_BUFFERS, values):
            result[_key(p, leaf)] = np.array([value], dtype=buf_dtype)
    return _as_torch(result) if as_torch else result


# --------------------------------------------------------------------------------------
# Whole models: CompressAI modules and tensorflow-compression layers

def _is_compressai_gdn(module):
    return (all(hasattr(module, a) for a in ("beta", "gamma", "beta_reparam", "gamma_reparam"))
            and hasattr(module, "inverse"))


def _class_names(obj):
    return {cls.__name__ for cls in type(obj).__mro__}


def is_gdn1(module):
    """Whether a CompressAI-style module is GDN1 (by class, or cgdn.torch's option)."""
    return bool(getattr(module, "simplified", "GDN1" in _class_names(module)))


def _compressai_buffers(module):
    state = {}
    for leaf in _BUFFERS:
        obj = module
        for part in leaf.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            state[leaf] = obj
    return state


def _new_layer(store, scope, beta, gamma, dtype, extra=None, **settings):
    from cgdn._layer import GDN

    dtype = np.dtype(dtype) if dtype is not None else beta.dtype
    store.create(f"{scope}/{BETA}", beta.astype(dtype))
    store.create(f"{scope}/{GAMMA}", gamma.astype(dtype))
    for leaf, value in (extra or {}).items():
        store.create(f"{scope}/{leaf}", np.asarray(value, dtype=dtype))
    return GDN(beta.shape[0], store=store, name=scope, dtype=dtype, **settings)


def _check_target(store, scopes):
    for scope in scopes:
        for leaf in LEAVES:
            if f"{scope}/{leaf}" in store:
                raise ValueError(f"the store already holds {scope}/{leaf}; import into "
                                 f"another store or prefix")


def from_compressai(model, *, store=None, prefix="", dtype=None):
    """Every CompressAI ``GDN`` / ``GDN1`` module of a model as a ready cgdn layer.

    Settings come from the modules, so nothing has to be restated: IGDN from
    ``inverse``, GDN1's ``alpha=1, epsilon=1`` from its class, ``beta_min`` and
    ``reparam_offset`` from the reparameterization buffers, and
    ``data_format="channels_first"`` (PyTorch's NCHW). The modules are recognized by
    their attributes (``beta``, ``gamma``, ``beta_reparam``, ``gamma_reparam``,
    ``inverse``): torch is never imported. Parameters that require grad are detached.

    Parameters
    ----------
    model : torch.nn.Module-like
        A model (anything with ``named_modules()``) or one GDN module.
    store : parameter store, optional
        Where the layers' variables go, under the module paths with ``/``
        (``g_a.1`` -> ``g_a/1``); a new :class:`cgdn.ParameterStore` by default.
    prefix : str, default ''
        A scope for all of them in ``store``.
    dtype : dtype, optional
        dtype of the variables; the modules' own by default.

    Returns
    -------
    dict of str to cgdn.GDN
        ``{module path: layer}`` in the model's order, e.g. ``{"g_a.1": ..., "g_s.1": ...}``
        (``""`` for a lone module).

    Raises
    ------
    ValueError
        If the model holds no GDN module (nothing succeeds silently), or a module's
        buffers are inconsistent.

    Examples
    --------
    A stand-in for a CompressAI IGDN module (a real one works the same):

    >>> import numpy as np
    >>> import cgdn
    >>> from types import SimpleNamespace as NS
    >>> p = 2.0**-36
    >>> igdn = NS(inverse=True, beta=np.sqrt(np.ones(3) + p), gamma=np.sqrt(0.1 * np.eye(3) + p),
    ...           beta_reparam=NS(pedestal=np.array([p]),
    ...                           lower_bound=NS(bound=np.array([np.sqrt(1e-6 + p)]))),
    ...           gamma_reparam=NS(pedestal=np.array([p]), lower_bound=NS(bound=np.array([2.0**-18]))))
    >>> model = NS(named_modules=lambda: [("", model), ("g_s.1", igdn)])
    >>> layers = cgdn.from_compressai(model)
    >>> layers["g_s.1"]
    cgdn.GDN(3, inverse=True, data_format='channels_first', name='g_s/1')
    """
    prefix = _scope_prefix(prefix)
    store = ParameterStore() if store is None else check_store(store)
    if hasattr(model, "named_modules"):
        modules = [(n, m) for n, m in model.named_modules() if _is_compressai_gdn(m)]
        seen = "named_modules()"
    elif _is_compressai_gdn(model):
        modules, seen = [("", model)], "the module"
    else:
        raise TypeError(f"model must be a CompressAI model or GDN module (with "
                        f"named_modules() or beta/gamma), got {type(model).__name__}")
    if not modules:
        names = [n for n, _ in model.named_modules()]
        raise _no_layers_error(f"the model's {seen}", names)
    layers, pending = {}, []
    for path, module in modules:
        beta, gamma = _compressai_pair({"beta": module.beta, "gamma": module.gamma}, "")
        settings = compressai_settings(_compressai_buffers(module), "")
        gdn1 = is_gdn1(module)
        settings["rectify"] = bool(getattr(module, "rectify", False))
        pending.append((path, _scope_of(prefix, path), beta, gamma, settings, gdn1,
                        bool(module.inverse)))
    with store.lock():
        _check_target(store, [item[1] for item in pending])
        for path, scope, beta, gamma, settings, gdn1, inverse in pending:
            layers[path] = _new_layer(
                store, scope, beta, gamma, dtype, inverse=inverse,
                alpha=1.0 if gdn1 else 2.0, epsilon=1.0 if gdn1 else 0.5,
                data_format="channels_first", **settings)
    return layers


def _is_tfc_gdn(layer):
    return all(hasattr(layer, a) for a in ("alpha_parameter", "beta_parameter",
                                           "gamma_parameter", "epsilon_parameter", "inverse",
                                           "rectify", "data_format"))


def _tfc_parameter(layer, what, minimum):
    """``(raw variable, fixed value, offset, minimum)`` of a tfc GDN parameter: a
    GDNParameter gives its variable, offset and minimum (fixed value None); a constant gives
    only its value (the others None)."""
    param = getattr(layer, f"{what}_parameter")
    name = getattr(layer, "name", "?")
    if param is None:
        raise ValueError(f"tfc layer {name!r} is not built ({what} is None): call it once "
                         f"or build it before converting")
    if hasattr(param, "variable") and hasattr(param, "minimum") and hasattr(param, "offset"):
        if minimum is not None and not math.isclose(float(param.minimum), minimum,
                                                    rel_tol=1e-6, abs_tol=0.0):
            raise ValueError(f"tfc layer {name!r}: {what} has minimum {param.minimum}, "
                             f"cgdn supports {minimum}")
        return as_numpy(param.variable, f"{name}.{what}"), None, float(param.offset), \
            float(param.minimum)
    if callable(param):
        raise ValueError(f"tfc layer {name!r}: {what} is computed by a callable "
                         f"({type(param).__name__}); only GDNParameter and fixed values "
                         f"can be converted")
    return None, as_numpy(param, f"{name}.{what}"), None, None


def from_tfc(model, *, store=None, prefix="", dtype=None):
    """Every ``tfc.GDN`` layer of a Keras model (or one layer) as a ready cgdn layer.

    Settings come from the layers: ``inverse``, ``rectify``, ``data_format``, alpha
    and epsilon (fixed values, or trained ones, kept as ``reparam_alpha`` /
    ``reparam_epsilon`` variables), ``beta_min`` and ``reparam_offset`` from the
    ``GDNParameter`` objects. Layers are recognized by their attributes: tensorflow is
    never imported.

    Parameters
    ----------
    model : tf.keras.Model-like or tfc.GDN-like
        Anything with ``submodules`` or ``layers`` (searched recursively), or a layer.
    store, prefix, dtype
        As in :func:`from_compressai`; each layer's scope is its Keras name.

    Returns
    -------
    dict of str to cgdn.GDN
        ``{layer name: layer}``.

    Raises
    ------
    ValueError
        If there is no GDN layer, a layer is not built, two layers share a name, or a
        parameter is computed by an arbitrary callable.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> from types import SimpleNamespace as NS
    >>> class GDN(NS):                     # stands for tfc.GDN
    ...     pass
    >>> reparam = lambda v, m: NS(variable=np.sqrt(v + 2.0**-36), minimum=m, offset=2.0**-18)
    >>> layer = GDN(name="gdn", inverse=False, rectify=True, data_format="channels_last",
    ...             alpha_parameter=np.float32(1), epsilon_parameter=np.float32(1),
    ...             beta_parameter=reparam(np.ones(2), 1e-6),
    ...             gamma_parameter=reparam(0.1 * np.eye(2), 0.0))
    >>> cgdn.from_tfc(layer)["gdn"]
    cgdn.GDN(2, rectify=True, alpha=1.0, epsilon=1.0, name='gdn')
    """
    prefix = _scope_prefix(prefix)
    store = ParameterStore() if store is None else check_store(store)
    found = []
    if _is_tfc_gdn(model):
        found = [model]
    elif hasattr(model, "submodules") or hasattr(model, "layers"):
        found = [m for m in _walk_keras(model) if _is_tfc_gdn(m)]
        if not found:
            names = [getattr(m, "name", type(m).__name__) for m in _walk_keras(model)]
            raise _no_layers_error("the model", names)
    else:
        raise TypeError(f"model must be a Keras model or a tfc.GDN layer, got "
                        f"{type(model).__name__}")
    pending = []
    for layer in found:
        name = str(getattr(layer, "name", "gdn"))
        if any(item[0] == name for item in pending):
            raise ValueError(f"two tfc GDN layers are named {name!r}")
        beta, fixed_beta, offset, bmin = _tfc_parameter(layer, "beta", None)
        gamma, fixed_gamma, gamma_offset, _ = _tfc_parameter(layer, "gamma", 0.0)
        if beta is None or gamma is None:
            raise ValueError(f"tfc layer {name!r} has a fixed beta or gamma; only trained "
                             f"(GDNParameter) beta and gamma can be converted")
        if not math.isclose(offset, gamma_offset, rel_tol=1e-9):
            raise ValueError(f"tfc layer {name!r}: beta and gamma offsets differ")
        settings = {"inverse": bool(layer.inverse), "rectify": bool(layer.rectify),
                    "data_format": str(layer.data_format), "beta_min": bmin,
                    "reparam_offset": offset}
        extra = {}
        for what, leaf, minimum in (("alpha", ALPHA, ALPHA_MIN),
                                    ("epsilon", EPSILON, EPSILON_MIN)):
            raw, fixed, exp_offset, _ = _tfc_parameter(layer, what, minimum)
            if raw is not None:
                if not math.isclose(exp_offset, offset, rel_tol=1e-9):
                    raise ValueError(f"tfc layer {name!r}: {what} has another offset")
                extra[leaf] = raw.reshape(())
                settings[what] = float(reparam_value(raw.reshape(()), minimum, offset))
            else:
                settings[what] = float(fixed.reshape(()))
        pending.append((name, _scope_of(prefix, name.replace("/", ".")), beta, gamma,
                        settings, extra))
    layers = {}
    with store.lock():
        _check_target(store, [item[1] for item in pending])
        for name, scope, beta, gamma, settings, extra in pending:
            layers[name] = _new_layer(store, scope, beta, gamma, dtype, extra, **settings)
    return layers


def _walk_keras(model):
    if hasattr(model, "submodules"):
        return list(model.submodules)
    result, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        result.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return result
