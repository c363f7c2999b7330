"""Layer objects: a GDN layer that carries its settings and variables (as ``tfc.GDN`` and
CompressAI's ``GDN`` / ``GDN1`` do), and files of saved layers."""
import numpy as np

from cgdn import _dask
from cgdn._gdn import apply_gdn, normalize
from cgdn._files import read_parameter_file, write_parameter_file
from cgdn._reparam import (ALPHA, BETA, EPSILON, GAMMA, gdn_layers, initial_variables,
                           reparam_value, trained_exponents)
from cgdn._scopes import _unique_layer_name, check_scope_name
from cgdn._store import ParameterStore, check_store
from cgdn._threads import effective_num_threads, lazy_threads
from cgdn._validation import (channel_axis, check_data_format, check_flag, check_lazy_extras,
                              check_out, check_positive_real, compute_dtype, layout_hint,
                              read_input)

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_CONFIG_KEYS = ("channels", "inverse", "rectify", "alpha", "epsilon", "data_format",
                "beta_min", "gamma_init", "reparam_offset", "dtype", "name")


def _check_dtype(dtype):
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32, float64 or None, got {dtype!r}") from None
    if dt not in _DTYPES.values():
        raise TypeError(f"dtype must be float32, float64 or None, got {dt}")
    return dt


def _check_channels(channels):
    if channels is None:
        return None
    if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, (int, np.integer)):
        raise TypeError(f"channels must be a positive int or None, got {channels!r}")
    if channels < 1:
        raise ValueError(f"channels must be a positive int or None, got {channels}")
    return int(channels)


class GDN:
    r"""A GDN (or IGDN) layer with its settings and its variables.

    The object form of :func:`cgdn.gdn`, as ``tfc.GDN`` and CompressAI's ``GDN`` /
    ``GDN1`` are layer objects: settings are given once, variables live with the
    layer, and calling it applies

    .. math:: y_i = x_i / \left(\beta_i + \sum_j \gamma_{ji} |x_j|^\alpha\right)^\epsilon

    (``inverse=True`` multiplies) at every position.

    Parameters
    ----------
    channels : int, optional
        Number of channels. None builds the layer on its first call, from the input
        (as Keras layers do).
    inverse, rectify, alpha, epsilon, data_format
        As in :func:`cgdn.apply_gdn`. Defaults are classic GDN (``alpha=2``,
        ``epsilon=0.5``); ``alpha=1, epsilon=1`` is the simplified GDN (CompressAI's
        ``GDN1``, tensorflow-compression's default).
    beta_min, gamma_init, reparam_offset
        As in :func:`cgdn.gdn`: the reparameterization of the stored variables.
    dtype : {None, 'float32', 'float64'}
        dtype of the variables. None: float32 when built from ``channels``, else the
        compute dtype of the first input (float64 for float64 input). Inputs are
        computed in their own dtype; the variables are cast to it.
    store : parameter store, optional
        Where the variables live. None gives the layer a private
        :class:`cgdn.ParameterStore`. With a shared store, the variables are
        ``<name>/reparam_beta`` and ``<name>/reparam_gamma``, the names :func:`cgdn.gdn`
        uses: a layer and ``gdn(..., name=name, reuse=True, store=store)`` share them.
    name : str, optional
        The layer's scope in the store. If the store already holds variables under it,
        the layer uses them (its channel count must agree). None picks the first free
        ``gdn``, ``gdn_1``, ... of the store.

    Attributes
    ----------
    beta, gamma : ndarray
        Effective parameters (read-only copies), recomputed from the variables.
    reparam_beta, reparam_gamma : ndarray
        The stored variables (read-only copies); assign to change them.
    alpha, epsilon : float
        The exponents in use: trained values when the store holds
        ``<name>/reparam_alpha`` / ``<name>/reparam_epsilon`` (imported from
        tensorflow-compression), else the settings.
    config : dict
        Plain settings that recreate the layer: ``cgdn.GDN(**layer.config)``.

    Notes
    -----
    Pickling a layer keeps its settings and its variables' values, not its store: the
    copy has a private store. A layer never trains; it holds, shares and saves
    parameters (:func:`cgdn.save_layers`).

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> layer = cgdn.GDN(inverse=True)
    >>> x = np.ones((1, 4, 4, 3), np.float32)
    >>> y = layer(x)                       # builds with 3 channels
    >>> layer.channels, layer.gamma.shape
    (3, (3, 3))
    >>> bool(np.allclose(y, x * np.sqrt(1 + 0.1 * x**2)))
    True
    >>> cgdn.GDN(**layer.config).config == layer.config
    True
    """

    def __init__(self, channels=None, *, inverse=False, rectify=False, alpha=2.0,
                 epsilon=0.5, data_format="channels_last", beta_min=1e-6, gamma_init=0.1,
                 reparam_offset=2.0**-18, dtype=None, store=None, name=None):
        channels = _check_channels(channels)
        self._inverse = check_flag("inverse", inverse)
        self._rectify = check_flag("rectify", rectify)
        self._alpha = check_positive_real("alpha", alpha)
        self._epsilon = check_positive_real("epsilon", epsilon)
        self._data_format = check_data_format(data_format)
        self._beta_min = check_positive_real("beta_min", beta_min, allow_zero=True)
        self._gamma_init = check_positive_real("gamma_init", gamma_init, allow_zero=True)
        self._reparam_offset = check_positive_real("reparam_offset", reparam_offset)
        self._dtype = _check_dtype(dtype)
        if name is not None:
            check_scope_name(name, "name")
        self._store = ParameterStore() if store is None else check_store(store)
        self._auto_name = name is None
        with self._store.lock():
            self._name = _unique_layer_name(self._store, "") if name is None else name
            if self._exists():
                self._attach(channels)
            elif channels is not None:
                self._create(channels, self._dtype or np.dtype(np.float32))
            else:
                self._channels = None

    # -- building --
    def _var(self, leaf):
        return f"{self._name}/{leaf}"

    def _exists(self):
        return self._var(BETA) in self._store or self._var(GAMMA) in self._store

    def _attach(self, channels):
        beta, gamma = self._store[self._var(BETA)], self._store[self._var(GAMMA)]
        n = beta.shape[0] if beta.ndim == 1 else -1
        if beta.ndim != 1 or gamma.shape != (n, n):
            raise ValueError(
                f"layer {self._name!r}: the store holds reparam_beta {beta.shape} and "
                f"reparam_gamma {gamma.shape}, not a GDN layer's (C,) and (C, C)"
            )
        if channels is not None and channels != n:
            raise ValueError(
                f"layer {self._name!r} exists in the store with {n} channels, not {channels}"
            )
        self._channels = n
        if self._dtype is None:
            self._dtype = np.dtype(beta.dtype)

    def _create(self, channels, dtype):
        beta, gamma = initial_variables(channels, self._gamma_init, self._reparam_offset, dtype)
        self._store.create(self._var(BETA), beta)
        try:
            self._store.create(self._var(GAMMA), gamma)
        except BaseException:
            del self._store[self._var(BETA)]
            raise
        self._channels = channels
        self._dtype = np.dtype(dtype)

    def build(self, channels, dtype=None):
        """Create the variables for ``channels`` channels (done by the first call)."""
        channels = _check_channels(channels)
        if channels is None:
            raise TypeError("channels must be a positive int")
        with self._store.lock():
            if self._channels is not None:
                if channels != self._channels:
                    raise ValueError(
                        f"layer {self._name!r} is built for {self._channels} channels, "
                        f"not {channels}"
                    )
                return
            if self._exists() and self._auto_name:
                self._name = _unique_layer_name(self._store, "")  # another layer took it
            if self._exists():
                self._attach(channels)
            else:
                self._create(channels, self._dtype or _check_dtype(dtype) or np.float32)

    @property
    def built(self):
        """Whether the variables exist (the channel count is known)."""
        return self._channels is not None

    # -- settings --
    channels = property(lambda self: self._channels, doc="Channel count (None until built).")
    inverse = property(lambda self: self._inverse, doc="IGDN instead of GDN.")
    rectify = property(lambda self: self._rectify, doc="Rectify the inputs first.")
    data_format = property(lambda self: self._data_format, doc="Position of the channel axis.")
    beta_min = property(lambda self: self._beta_min, doc="Lower bound of the effective beta.")
    gamma_init = property(lambda self: self._gamma_init, doc="Initial diagonal of gamma.")
    reparam_offset = property(lambda self: self._reparam_offset, doc="Reparameterization offset.")
    name = property(lambda self: self._name, doc="The layer's scope in its store.")
    store = property(lambda self: self._store, doc="The store holding the variables.")

    @property
    def dtype(self):
        """dtype of the variables (None until built, unless given)."""
        return self._dtype

    def _exponents(self):
        """``(alpha, epsilon)`` in use: trained values from the store where it holds them,
        else the settings (one read of the store for both)."""
        layer = {leaf: self._store[self._var(leaf)] for leaf in (ALPHA, EPSILON)
                 if self._var(leaf) in self._store}
        alpha, epsilon = trained_exponents(layer, self._reparam_offset)
        return (self._alpha if alpha is None else alpha,
                self._epsilon if epsilon is None else epsilon)

    @property
    def alpha(self):
        """The exponent of ``|x|`` in use (trained when the store holds one)."""
        return self._exponents()[0]

    @property
    def epsilon(self):
        """The exponent of the pool in use (trained when the store holds one)."""
        return self._exponents()[1]

    @property
    def config(self):
        """Settings that recreate this layer (without its variables): a new dict."""
        exponents = self._exponents()
        return {
            "channels": self._channels, "inverse": self._inverse, "rectify": self._rectify,
            "alpha": exponents[0], "epsilon": exponents[1], "data_format": self._data_format,
            "beta_min": self._beta_min, "gamma_init": self._gamma_init,
            "reparam_offset": self._reparam_offset,
            "dtype": None if self._dtype is None else self._dtype.name, "name": self._name,
        }

    # -- variables --
    def _require_built(self, what):
        if self._channels is None:
            raise ValueError(f"layer {self._name!r} is not built yet: {what} needs its "
                             f"channel count (call it once, or pass channels=)")

    def _raw(self, leaf):
        self._require_built(leaf)
        return self._store[self._var(leaf)]

    def _assign(self, leaf, value):
        self._require_built(leaf)
        self._store[self._var(leaf)] = value

    reparam_beta = property(lambda self: self._raw(BETA), lambda self, v: self._assign(BETA, v),
                            doc="The stored beta variable (read-only copy; assignable).")
    reparam_gamma = property(lambda self: self._raw(GAMMA),
                             lambda self, v: self._assign(GAMMA, v),
                             doc="The stored gamma variable (read-only copy; assignable).")

    def _effective(self, dtype):
        beta = reparam_value(self._raw(BETA), self._beta_min, self._reparam_offset, dtype)
        gamma = reparam_value(self._raw(GAMMA), 0.0, self._reparam_offset, dtype)
        return beta, gamma

    def _frozen_effective(self, index):
        arr = self._effective(self._dtype)[index]
        arr.flags.writeable = False
        return arr

    beta = property(lambda self: self._frozen_effective(0),
                    doc="Effective beta (read-only), from the stored variable.")
    gamma = property(lambda self: self._frozen_effective(1),
                     doc="Effective gamma in TF orientation [in, out] (read-only).")

    @property
    def variables(self):
        """``{full name: read-only array}`` of the layer's stored variables."""
        self._require_built("variables")
        return {self._var(leaf): self._store[self._var(leaf)]
                for leaf in (BETA, GAMMA, ALPHA, EPSILON) if self._var(leaf) in self._store}

    # -- calling --
    def _channel_error(self, x, got):
        axis = channel_axis(self._data_format, x.ndim)
        return ValueError(
            f"GDN layer {self._name!r} expects {self._channels} channels on axis {axis} "
            f"({self._data_format}), got {got} in inputs of shape {x.shape}"
            + layout_hint(x.shape, self._data_format, self._channels))

    def __call__(self, inputs, *, out=None, num_threads=None):
        """Apply the layer to ``inputs`` (rank >= 2); see :func:`cgdn.apply_gdn` for
        ``out`` and ``num_threads``. Returns an ndarray of the input's shape and dtype."""
        source = read_input(inputs, min_rank=2, data_format=self._data_format,
                            need_channels=self._channels is None)
        x, got = source.x, source.n_channels
        if self._channels is None:
            self.build(got, compute_dtype(x.dtype))
        elif got != self._channels:
            raise self._channel_error(x, got)
        beta, gamma = self._effective(compute_dtype(x.dtype))
        alpha, epsilon = self._exponents()
        settings = dict(inverse=self._inverse, rectify=self._rectify, alpha=alpha,
                        epsilon=epsilon, data_format=self._data_format)
        if source.lazy:   # the graph carries the effective parameters of this moment
            check_lazy_extras(out)
            return _dask.map_channel_blocks(apply_gdn, x, beta, gamma, axis=source.axis,
                                            num_threads=lazy_threads(num_threads),
                                            **settings)
        return normalize(x, beta, gamma, out=check_out(out, x.shape, x.dtype),
                         num_threads=effective_num_threads(num_threads), **settings)

    # -- export, pickling, display --
    def to_compressai(self, prefix=""):
        """This layer as a CompressAI ``GDN``/``GDN1`` state dict (NumPy arrays) that
        ``load_state_dict(..., strict=True)`` accepts; see :func:`cgdn.export_compressai`."""
        from cgdn._interop import export_compressai
        return export_compressai({prefix: self})

    def __getstate__(self):
        variables = {}
        if self._channels is not None:
            variables = {leaf: self._store[self._var(leaf)]
                         for leaf in (BETA, GAMMA, ALPHA, EPSILON) if self._var(leaf) in self._store}
        config = self.config
        config["alpha"], config["epsilon"] = self._alpha, self._epsilon
        return {"config": config, "variables": variables}

    def __setstate__(self, state):
        config = dict(state["config"])
        config["channels"] = None
        self.__init__(**config)
        with self._store.lock():
            for leaf, value in state["variables"].items():
                self._store.create(self._var(leaf), value)
            if self._exists():
                self._attach(None)

    def __repr__(self):
        defaults = {"inverse": False, "rectify": False, "alpha": 2.0, "epsilon": 0.5,
                    "data_format": "channels_last", "beta_min": 1e-6, "gamma_init": 0.1,
                    "reparam_offset": 2.0**-18}
        config = self.config
        parts = [repr(config["channels"])]
        parts += [f"{k}={config[k]!r}" for k in defaults if config[k] != defaults[k]]
        parts.append(f"name={self._name!r}")
        return f"cgdn.GDN({', '.join(parts)})"


def _as_layer_dict(layers):
    """``{name: layer}`` of a layer, a dict or a list of layers; in a list, layers named by
    the user keep their names (two alike are refused) and unnamed ones take the first free
    of ``gdn``, ``gdn_1``, ... (as Keras names layers)."""
    if isinstance(layers, GDN):
        return {layers.name: layers}
    if isinstance(layers, dict):
        items = list(layers.items())
    else:
        try:
            items = list(enumerate(layers))
        except TypeError:
            raise TypeError("layers must be a cgdn.GDN, a dict of them or a list of them, "
                            f"got {type(layers).__name__}") from None
    seen = {}
    for key, layer in items:
        if not isinstance(layer, GDN):
            raise TypeError(f"layers[{key!r}] is a {type(layer).__name__}, not a cgdn.GDN")
        if isinstance(layers, dict) and (not isinstance(key, str) or not key):
            raise TypeError(f"layer names must be non-empty str, got {key!r}")
        if id(layer) in seen:
            raise ValueError(f"layers[{seen[id(layer)]!r}] and layers[{key!r}] are the same "
                             f"layer ({layer!r})")
        seen[id(layer)] = key
    if not items:
        raise ValueError("no layers to save")
    if isinstance(layers, dict):
        return dict(items)
    named = [layer.name for _, layer in items if not layer._auto_name]
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        raise ValueError(f"layers named alike would overwrite each other in the file: "
                         f"{twice}; give them distinct names (or pass a dict)")
    taken, result = set(named), {}
    for _, layer in items:
        name, index = layer.name, 0
        while layer._auto_name and name in taken:
            index += 1
            name = f"gdn_{index}"
        taken.add(name)
        result[name] = layer
    return result


def save_layers(path, layers):
    """Save layers, settings included, to an ``.npz`` file (atomically).

    Variables are stored as arrays and each layer's :attr:`GDN.config` as JSON text
    inside the archive (never pickle). :func:`load_layers` gives the layers back.

    Parameters
    ----------
    path : str or path-like
    layers : cgdn.GDN, dict of str to cgdn.GDN, or list of cgdn.GDN
        A dict's keys name the layers in the file. A list uses each layer's ``name``:
        layers created without a name (each ``gdn`` in its own store) take the first
        free of ``gdn``, ``gdn_1``, ... in list order, as Keras names layers; two layers
        named alike by the user, or one layer listed twice, are refused. Every layer must
        be built.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import cgdn
    >>> layers = {"g_a.1": cgdn.GDN(3), "g_s.1": cgdn.GDN(3, inverse=True)}
    >>> path = os.path.join(tempfile.mkdtemp(), "layers.npz")
    >>> cgdn.save_layers(path, layers)
    >>> loaded = cgdn.load_layers(path)
    >>> loaded["g_s.1"].inverse, loaded["g_s.1"].channels
    (True, 3)
    """
    layers = _as_layer_dict(layers)
    arrays, configs = {}, {}
    for key, layer in layers.items():
        layer._require_built("saving")
        scope = key.replace(".", "/") if key else "gdn"
        check_scope_name(scope, f"layer name {key!r}")
        other = next((k for k, config in configs.items() if config["name"] == scope), None)
        if other is not None:
            raise ValueError(f"layer names {other!r} and {key!r} both map to scope {scope!r}")
        for full, value in layer.variables.items():
            arrays[f"{scope}/{full.rpartition('/')[2]}"] = value
        config = layer.config
        config["name"] = scope
        configs[key] = config
    write_parameter_file(path, arrays, [], layers=configs)


def load_layers(path, *, max_bytes=None):
    """The layers saved by :func:`save_layers`: ``{name: cgdn.GDN}`` in the order they
    were saved, settings included.

    The layers share one new :class:`cgdn.ParameterStore` (``layer.store``). The file is
    read defensively (see :meth:`cgdn.ParameterStore.load`): at most ``max_bytes``
    (default 1 GiB) are decompressed, and nothing is unpickled.

    Raises
    ------
    OSError
        If the file cannot be opened (``FileNotFoundError``, ``PermissionError``, ...).
    ValueError
        If the file is not a cgdn file of saved layers, is malformed or over the limit.
    """
    arrays, _, configs = read_parameter_file(path, max_bytes=max_bytes, with_layers=True)
    if not configs:
        raise ValueError(f"{path!s} holds no saved layers (write it with cgdn.save_layers; "
                         f"a store's file loads with cgdn.ParameterStore.load)")
    scopes = gdn_layers(arrays, source=str(path))
    store = ParameterStore()
    for name, value in arrays.items():
        store.create(name, value)
    layers = {}
    for key, config in configs.items():
        unknown = set(config) - set(_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"{path!s}: layer {key!r} has unknown settings {sorted(unknown)}")
        scope = config.get("name")
        if not isinstance(scope, str) or scope not in scopes:
            raise ValueError(f"{path!s}: layer {key!r} has no variables under {scope!r}")
        try:
            layers[key] = GDN(**{**config, "store": store})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!s}: layer {key!r}: {exc}") from None
    return layers
