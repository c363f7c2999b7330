"""Parameter storage for :func:`cgdn.gdn`: stores, scopes, reuse, files and importers.

A store maps TensorFlow-style scoped names (``"encoder/gdn/reparam_beta"``) to arrays.
It holds, scopes, saves and imports parameters; it never trains them.

The store protocol
------------------
A store maps names to arrays. :func:`cgdn.gdn` needs only:

==================================  =======================================================
``name in store``                   membership
``store[name]`` or ``store.get``    read a variable
``store.create(name, value,         add a new variable (``trainable`` decides membership in
trainable=True)`` or ``store.set``  ``trainable_variables``); ``__setitem__`` also works
==================================  =======================================================

and uses these when present:

==================================  =======================================================
``iter(store)`` or ``store.keys()`` names, for ``gdn``, ``gdn_1``, ... (else: not needed
                                    when every layer is named)
``del store[name]``                 undo a ``gdn`` call that failed after creating
``store.add_loss(value, scope=)``   activity-regularization losses (else appended to a
                                    ``store.losses`` list)
``store.lock()``                    a re-entrant lock around get-or-create (else one lock
                                    shared by all such stores)
==================================  =======================================================

:class:`ParameterStore` is the in-memory implementation: thread-safe, picklable, with
``save``/``load``/``restore`` to ``.npz`` files. :func:`get_default_store` returns the
process-wide one that :func:`cgdn.gdn` uses when ``store=None``.
"""
import contextlib
import math
import os
import re
import tempfile
import threading
import zipfile

import numpy as np

from cgdn._validation import as_real_array

__all__ = [
    "AUTO_REUSE",
    "ActivityLoss",
    "ParameterStore",
    "export_compressai",
    "get_default_store",
    "import_compressai",
    "import_tf_variables",
    "reparam_init",
    "reparam_value",
    "variable_scope",
]

BETA = "reparam_beta"
GAMMA = "reparam_gamma"
_FORMAT_KEY = "__cgdn_format__"
_TRAINABLE_KEY = "__cgdn_trainable__"
_FORMAT = "cgdn-parameters-1"


class _AutoReuse:
    """Reuse mode that creates variables when missing and shares them when present."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "cgdn.AUTO_REUSE"

    def __reduce__(self):
        return (_AutoReuse, ())


AUTO_REUSE = _AutoReuse()


class ActivityLoss(float):
    """A float loss value tagged with the scope of the layer that produced it.

    Behaves as a float (``sum(store.losses)`` works); ``loss.scope`` names the layer.
    """

    def __new__(cls, value, scope):
        self = super().__new__(cls, value)
        self.scope = scope
        return self

    def __repr__(self):
        return f"ActivityLoss({float(self)!r}, scope={self.scope!r})"

    def __reduce__(self):
        return (ActivityLoss, (float(self), self.scope))


# --------------------------------------------------------------------------------------
# Reparameterization (TF contrib / tensorflow-compression / CompressAI semantics)

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


# --------------------------------------------------------------------------------------
# The in-memory store

def _frozen(value):
    """A read-only C-contiguous copy of ``value``.

    The store keeps these and hands out fresh ones: writing to a handed-out array raises,
    and a caller who flips its flag back only changes their own copy, never the store.
    """
    arr = np.array(value, copy=True, order="C")
    arr.flags.writeable = False
    return arr


def _check_variable_value(name, value, dtype=None):
    """A finite float array (cast to ``dtype`` when given) for variable ``name``."""
    arr = as_real_array(value, f"value for {name!r}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
        if arr.dtype == np.float16:
            dtype = np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"value for {name!r} must be finite (in {np.dtype(dtype)})")
    return arr


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError(f"variable names must be str, got {type(name).__name__}")
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        raise ValueError(f"invalid variable name {name!r}: use 'scope/.../variable'")
    return name


class ParameterStore:
    """In-memory, thread-safe, picklable store of named parameter arrays.

    Arrays are handed out as read-only copies: ``store[name]`` can be read but not
    changed in place, and nothing done to it reaches the store; assign with
    ``store[name] = value`` (validated against the variable's shape, cast to its dtype).
    No optimizer: the store holds, scopes, saves and imports parameters.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> y = cgdn.gdn(np.ones((1, 4, 4, 3), np.float32), store=store)
    >>> list(store)
    ['gdn/reparam_beta', 'gdn/reparam_gamma']
    >>> store["gdn/reparam_beta"].shape
    (3,)
    >>> store["gdn/reparam_beta"] = [1.0, 2.0, 3.0]     # same shape, cast to float32
    >>> store["gdn/reparam_beta"].dtype
    dtype('float32')
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._variables = {}
        self._trainable = []
        self._losses = []

    # -- pickling (the lock is recreated) --
    def __getstate__(self):
        with self._lock:
            return {"variables": dict(self._variables), "trainable": list(self._trainable),
                    "losses": list(self._losses)}

    def __setstate__(self, state):
        self.__init__()
        self._variables = {k: _frozen(v) for k, v in state["variables"].items()}
        self._trainable = list(state["trainable"])
        self._losses = list(state["losses"])

    def lock(self):
        """Context manager holding the store's (re-entrant) lock."""
        return self._lock

    # -- mapping protocol --
    def __getitem__(self, name):
        with self._lock:
            try:
                return _frozen(self._variables[name])
            except KeyError:
                raise KeyError(f"no variable {name!r} in the store") from None

    def __setitem__(self, name, value):
        with self._lock:
            if name not in self._variables:
                raise KeyError(
                    f"no variable {name!r} in the store; create it with "
                    f"store.create({name!r}, value)"
                )
            current = self._variables[name]
            arr = _check_variable_value(name, value, current.dtype)
            if arr.shape != current.shape:
                raise ValueError(
                    f"value for {name!r} must have shape {current.shape}, got {arr.shape}"
                )
            self._variables[name] = _frozen(arr)

    def __delitem__(self, name):
        with self._lock:
            del self._variables[name]
            if name in self._trainable:
                self._trainable.remove(name)

    def __contains__(self, name):
        return name in self._variables

    def __iter__(self):
        with self._lock:
            return iter(list(self._variables))

    def __len__(self):
        return len(self._variables)

    def __repr__(self):
        return f"<ParameterStore with {len(self)} variables>"

    def keys(self):
        """Variable names, in creation order."""
        return list(self)

    def get(self, name, default=None):
        """``store[name]``, or ``default`` when there is no such variable."""
        with self._lock:
            arr = self._variables.get(name)
            return default if arr is None else _frozen(arr)

    def set(self, name, value, *, trainable=True):
        """Create ``name`` (listed as trainable or not), or replace its value if it exists."""
        with self._lock:
            if name in self._variables:
                self[name] = value
            else:
                self.create(name, value, trainable=trainable)

    def items(self):
        """``(name, read-only array)`` pairs, in creation order."""
        with self._lock:
            return [(name, _frozen(arr)) for name, arr in self._variables.items()]

    def create(self, name, value, *, trainable=True):
        """Add a new variable. ``ValueError`` if ``name`` exists."""
        _check_name(name)
        arr = _frozen(_check_variable_value(name, value))
        with self._lock:
            if name in self._variables:
                raise ValueError(f"variable {name!r} already exists in the store")
            self._variables[name] = arr
            if trainable:
                self._trainable.append(name)

    @property
    def trainable_variables(self):
        """Names of the variables created with ``trainable=True`` (a new list)."""
        with self._lock:
            return list(self._trainable)

    @property
    def losses(self):
        """Activity-regularization losses (:class:`ActivityLoss` floats; a new list)."""
        with self._lock:
            return list(self._losses)

    def add_loss(self, value, *, scope):
        with self._lock:
            self._losses.append(ActivityLoss(value, scope))

    def clear_losses(self):
        """Forget the collected losses (as a new TF graph would)."""
        with self._lock:
            self._losses.clear()

    def clear(self):
        """Remove every variable and loss."""
        with self._lock:
            self._variables.clear()
            self._trainable.clear()
            self._losses.clear()

    # -- files --
    def save(self, path):
        """Write all variables to an ``.npz`` file at ``path`` (used as given), atomically.

        The file is written to a temporary file in the same folder and renamed over
        ``path``, so an interrupted save never damages an existing file.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import cgdn
        >>> store = cgdn.ParameterStore()
        >>> _ = cgdn.gdn(np.ones((1, 2, 2, 4)), store=store, name="layer")
        >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
        >>> store.save(path)
        >>> cgdn.ParameterStore.load(path).keys()
        ['layer/reparam_beta', 'layer/reparam_gamma']
        """
        with self._lock:
            arrays = dict(self._variables)
            trainable = list(self._trainable)
        _atomic_savez(path, arrays, trainable)

    @classmethod
    def load(cls, path):
        """A new store holding the variables of a file written by :meth:`save`."""
        arrays, trainable = _read_parameter_file(path)
        store = cls()
        with store._lock:
            for name, arr in arrays.items():
                store._variables[name] = _frozen(arr)
            store._trainable = [n for n in arrays if n in trainable]
        return store

    def restore(self, path):
        """Assign the values of a saved file to this store's variables, all or nothing.

        The file must hold exactly this store's variable names, with the same shapes;
        otherwise ``ValueError`` and the store is unchanged.
        """
        arrays, _ = _read_parameter_file(path)
        with self._lock:
            missing = [n for n in self._variables if n not in arrays]
            extra = [n for n in arrays if n not in self._variables]
            if missing or extra:
                raise ValueError(
                    f"{path!s} does not match the store: missing {missing}, extra {extra}"
                )
            for name, arr in arrays.items():
                if arr.shape != self._variables[name].shape:
                    raise ValueError(
                        f"{path!s}: {name!r} has shape {arr.shape}, the store's has "
                        f"{self._variables[name].shape}"
                    )
            for name, arr in arrays.items():
                self._variables[name] = _frozen(arr.astype(self._variables[name].dtype))


_DEFAULT_STORE = ParameterStore()


def get_default_store():
    """The process-wide :class:`ParameterStore` that :func:`cgdn.gdn` uses by default.

    Examples
    --------
    >>> import cgdn
    >>> cgdn.get_default_store() is cgdn.get_default_store()
    True
    """
    return _DEFAULT_STORE


_FOREIGN_LOCK = threading.RLock()


class _ForeignStore:
    """The full store interface cgdn uses, on top of a user's minimal store object."""

    def __init__(self, store):
        self.store = store

    def __contains__(self, name):
        return name in self.store

    def __getitem__(self, name):
        if hasattr(self.store, "__getitem__"):
            return self.store[name]
        return self.store.get(name)

    def __setitem__(self, name, value):
        if hasattr(self.store, "set"):
            self.store.set(name, value)
        else:
            self.store[name] = value

    def __delitem__(self, name):
        if hasattr(self.store, "__delitem__"):
            del self.store[name]
        elif hasattr(self.store, "pop"):
            self.store.pop(name)

    def __iter__(self):
        if hasattr(self.store, "keys"):
            return iter(list(self.store.keys()))
        if hasattr(self.store, "__iter__"):
            return iter(list(self.store))
        raise TypeError(
            f"{type(self.store).__name__} cannot list its names (no keys() or iteration): "
            "give every gdn layer a name="
        )

    def create(self, name, value, *, trainable=True):
        for method in ("create", "set"):
            if hasattr(self.store, method):
                return getattr(self.store, method)(name, value, trainable=trainable)
        self.store[name] = value

    def add_loss(self, value, *, scope):
        if hasattr(self.store, "add_loss"):
            self.store.add_loss(value, scope=scope)
        else:
            self.store.losses.append(ActivityLoss(value, scope))

    def lock(self):
        return self.store.lock() if hasattr(self.store, "lock") else _FOREIGN_LOCK


def check_store(store, *, needs_losses=False):
    """The store to use: the default one for None, ``store`` itself if it is a
    :class:`ParameterStore`, else an adapter over the protocol above; ``TypeError`` if
    ``store`` cannot serve as one."""
    if store is None:
        return _DEFAULT_STORE
    if isinstance(store, ParameterStore):
        return store
    if isinstance(store, (str, bytes, list, tuple, np.ndarray)):
        raise TypeError(
            f"store must be a mapping-like parameter store (see cgdn.params), got "
            f"{type(store).__name__}"
        )
    problems = []
    if not hasattr(store, "__contains__"):
        problems.append("'name in store'")
    if not (hasattr(store, "__getitem__") or hasattr(store, "get")):
        problems.append("store[name] or store.get(name)")
    if not any(hasattr(store, m) for m in ("create", "set", "__setitem__")):
        problems.append("store.create(name, value, trainable=...) or store.set(...)")
    if needs_losses and not (hasattr(store, "add_loss")
                             or isinstance(getattr(store, "losses", None), list)):
        problems.append("store.add_loss(value, scope=...) or a store.losses list")
    if problems:
        raise TypeError(
            f"store must implement the cgdn store protocol (see cgdn.params); "
            f"{type(store).__name__} lacks {'; '.join(problems)}"
        )
    return _ForeignStore(store)


# --------------------------------------------------------------------------------------
# Files

def _atomic_savez(path, arrays, trainable):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    payload = dict(arrays)
    payload[_FORMAT_KEY] = np.array(_FORMAT)
    payload[_TRAINABLE_KEY] = np.array(trainable, dtype=str)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_parameter_file(path):
    """``({name: array}, set of trainable names)`` from a saved file, fully validated."""
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path!s} is not a readable cgdn parameter file: {exc}") from None
    if contents.pop(_FORMAT_KEY, np.array("")).item() != _FORMAT:
        raise ValueError(f"{path!s} is not a cgdn parameter file (no {_FORMAT} marker)")
    trainable = contents.pop(_TRAINABLE_KEY, np.array([], dtype=str))
    if trainable.dtype.kind != "U" or trainable.ndim != 1:
        raise ValueError(f"{path!s}: malformed list of trainable variables")
    arrays = {}
    for name, arr in contents.items():
        _check_name(name)
        if arr.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path!s}: {name!r} must be float32 or float64, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{path!s}: {name!r} holds non-finite values")
        arrays[name] = arr
    _check_gdn_pairs(arrays, source=str(path))
    unknown = set(trainable.tolist()) - set(arrays)
    if unknown:
        raise ValueError(f"{path!s}: trainable names without variables: {sorted(unknown)}")
    return arrays, set(trainable.tolist())


def _check_gdn_pairs(arrays, source):
    """Every ``<scope>/reparam_beta [C]`` has a ``<scope>/reparam_gamma [C, C]`` and back."""
    scopes = {}
    for name, arr in arrays.items():
        scope, _, leaf = name.rpartition("/")
        if leaf in (BETA, GAMMA):
            scopes.setdefault(scope, {})[leaf] = arr
    for scope, pair in scopes.items():
        if set(pair) != {BETA, GAMMA}:
            missing = GAMMA if BETA in pair else BETA
            raise ValueError(f"{source}: {scope}/{missing} is missing")
        beta, gamma = pair[BETA], pair[GAMMA]
        c = beta.shape[0] if beta.ndim == 1 else -1
        if beta.ndim != 1 or gamma.shape != (c, c):
            raise ValueError(
                f"{source}: {scope} needs reparam_beta (C,) and reparam_gamma (C, C), got "
                f"{beta.shape} and {gamma.shape}"
            )
    return scopes


# --------------------------------------------------------------------------------------
# Scopes and the reuse rules

_scope_state = threading.local()


def _scope_stack():
    stack = getattr(_scope_state, "stack", None)
    if stack is None:
        stack = _scope_state.stack = []
    return stack


def check_reuse(reuse):
    reuse = reuse.item() if isinstance(reuse, np.ndarray) and reuse.ndim == 0 else reuse
    if reuse is None or reuse is AUTO_REUSE or isinstance(reuse, (bool, np.bool_)):
        return reuse if reuse is None or reuse is AUTO_REUSE else bool(reuse)
    raise TypeError(f"reuse must be None, True, False or cgdn.AUTO_REUSE, got {reuse!r}")


def _check_scope_name(name, what="name"):
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str or None, got {type(name).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*", name):
        raise ValueError(
            f"{what} must be non-empty and made of letters, digits, '_', '.', '-' "
            f"(with '/' between parts), got {name!r}"
        )
    return name


class _Scope:
    __slots__ = ("name", "reuse")

    def __init__(self, name, reuse):
        self.name = name
        self.reuse = reuse

    def __repr__(self):
        return f"<variable_scope {self.name!r} reuse={self.reuse!r}>"


@contextlib.contextmanager
def variable_scope(name, reuse=None):
    """Prefix the names of variables created inside with ``name/`` (as TF does).

    Scopes nest (``encoder/gdn/reparam_beta``) and are per Python thread. ``reuse=True``
    or ``AUTO_REUSE`` is inherited by everything inside, including nested scopes; inside a
    reusing scope, ``reuse=False`` cannot turn reuse back off (as in TensorFlow).

    Parameters
    ----------
    name : str
        Scope name (letters, digits, ``_``, ``.``, ``-``; ``/`` separates levels).
    reuse : {None, False, True, cgdn.AUTO_REUSE}
        Reuse mode for ``gdn`` calls inside.

    Yields
    ------
    scope
        An object with ``.name`` (the full prefix) and ``.reuse``.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> with cgdn.variable_scope("encoder"):
    ...     y = cgdn.gdn(np.ones((1, 3, 3, 2)), store=store)
    >>> list(store)
    ['encoder/gdn/reparam_beta', 'encoder/gdn/reparam_gamma']
    >>> with cgdn.variable_scope("encoder", reuse=True):
    ...     y2 = cgdn.gdn(np.ones((1, 3, 3, 2)), name="gdn", store=store)
    >>> len(store)
    2
    """
    _check_scope_name(name)
    reuse = check_reuse(reuse)
    stack = _scope_stack()
    outer = stack[-1] if stack else None
    full = f"{outer.name}/{name}" if outer else name
    inherited = outer.reuse if outer is not None and outer.reuse in (True, AUTO_REUSE) else None
    scope = _Scope(full, inherited if inherited is not None else reuse)
    stack.append(scope)
    try:
        yield scope
    finally:
        stack.pop()


def current_scope():
    stack = _scope_stack()
    return stack[-1] if stack else _Scope("", None)


def resolve_layer(store, name, reuse, n_channels, dtype, *, gamma_init, reparam_offset,
                  trainable):
    """Find or create the variables of one ``gdn`` layer, applying TF's reuse rules.

    Must be called with ``store.lock()`` held. Returns ``(scope, reparam_beta,
    reparam_gamma, created)`` where ``created`` lists the names this call added.
    """
    scope = current_scope()
    if scope.reuse in (True, AUTO_REUSE) and reuse in (None, False):
        reuse = scope.reuse
    prefix = f"{scope.name}/" if scope.name else ""
    if name is None:
        if reuse is True:
            raise ValueError(
                "reuse=True needs a layer name: pass name='...' of the layer to share"
            )
        layer = _unique_layer_name(store, prefix)
    else:
        layer = prefix + name
    beta_name, gamma_name = f"{layer}/{BETA}", f"{layer}/{GAMMA}"
    exists = beta_name in store or gamma_name in store
    if exists and reuse in (None, False):
        raise ValueError(
            f"variable {beta_name} already exists (a GDN layer named {layer!r} was created "
            f"before). To share its parameters pass reuse=True (or cgdn.AUTO_REUSE, or use "
            f"cgdn.variable_scope(..., reuse=True)); to create a new layer choose another "
            f"name or pass name=None for a unique one"
        )
    if not exists and reuse is True:
        raise ValueError(
            f"variable {beta_name} does not exist, so reuse=True cannot share it. Create the "
            f"layer first (reuse=None), use reuse=cgdn.AUTO_REUSE to create it when missing, "
            f"or check the name and scope"
        )
    if exists:
        if beta_name not in store or gamma_name not in store:
            missing = gamma_name if beta_name in store else beta_name
            raise ValueError(f"variable {missing} is missing: the store holds half a layer")
        beta, gamma = store[beta_name], store[gamma_name]
        want_beta, want_gamma = (n_channels,), (n_channels, n_channels)
        if beta.shape != want_beta or gamma.shape != want_gamma:
            raise ValueError(
                f"layer {layer!r} has reparam_beta {beta.shape} and reparam_gamma "
                f"{gamma.shape}, but inputs with {n_channels} channels need {want_beta} and "
                f"{want_gamma}; use another name for a layer with {n_channels} channels"
            )
        return layer, beta, gamma, []
    beta, gamma = initial_variables(n_channels, gamma_init, reparam_offset, dtype)
    store.create(beta_name, beta, trainable=trainable)
    try:
        store.create(gamma_name, gamma, trainable=trainable)
    except BaseException:
        del store[beta_name]
        raise
    return layer, store[beta_name], store[gamma_name], [beta_name, gamma_name]


def _unique_layer_name(store, prefix, base="gdn"):
    names = set(store)
    index = 0
    while True:
        layer = prefix + (base if index == 0 else f"{base}_{index}")
        if f"{layer}/{BETA}" not in names and f"{layer}/{GAMMA}" not in names:
            return layer
        index += 1


# --------------------------------------------------------------------------------------
# Importers and exporters (no TensorFlow or PyTorch needed)

def _as_numpy(value, key):
    # torch tensors (CPU) and TF arrays both convert through __array__.
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    return _check_variable_value(key, np.asarray(value))


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


def import_tf_variables(variables, store=None, *, prefix="", trainable=True):
    """Import GDN variables from a TensorFlow-style mapping of name -> array.

    Every ``<scope>/reparam_beta`` and ``<scope>/reparam_gamma`` (an optional ``:0``
    suffix is dropped) is created in ``store`` under ``prefix + <scope>``, or assigned
    if it exists with the same shape. Other names (kernels, biases, ...) are ignored.
    Works with any mapping, e.g. ``{n: reader.get_tensor(n) for n in ...}`` from
    ``tf.train.load_checkpoint``. All or nothing: on any error the store is unchanged.

    Parameters
    ----------
    variables : mapping of str to array_like
    store : ParameterStore, optional
        Defaults to the default store.
    prefix : str, default ''
        Prepended to every imported scope (e.g. ``'decoder/'``).
    trainable : bool, default True
        Whether newly created variables are listed as trainable.

    Returns
    -------
    list of str
        The imported layer scopes, in the order found.

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> ckpt = {"analysis/gdn_0/reparam_beta:0": np.ones(2),
    ...         "analysis/gdn_0/reparam_gamma:0": np.eye(2),
    ...         "analysis/conv_0/kernel:0": np.zeros((3, 3, 2, 2))}
    >>> cgdn.import_tf_variables(ckpt, store)
    ['analysis/gdn_0']
    """
    store = check_store(store)
    arrays = {}
    for key, value in variables.items():
        name = key[:-2] if key.endswith(":0") else key
        if name.rpartition("/")[2] in (BETA, GAMMA):
            arrays[_check_name(prefix + name)] = _as_numpy(value, key)
    scopes = _check_gdn_pairs(arrays, source="variables")
    _commit(store, arrays, trainable)
    return list(scopes)


def _compressai_prefixes(state_dict):
    prefixes = []
    for key in state_dict:
        if key.endswith(".beta") and key[: -len(".beta")] + ".gamma" in state_dict:
            prefixes.append(key[: -len(".beta")])
    return prefixes


def import_compressai(state_dict, store=None, *, prefix="", trainable=True):
    """Import the GDN / IGDN / GDN1 layers of a CompressAI-style state dict.

    Every pair ``<p>.beta`` (shape ``[C]``) and ``<p>.gamma`` (``[C, C]``, PyTorch's
    ``[out, in]`` conv orientation) becomes ``<scope>/reparam_beta`` and
    ``<scope>/reparam_gamma`` (transposed to TF's ``[in, out]``) where ``<scope>`` is
    ``prefix + p`` with dots replaced by ``/`` (``g_a.1`` -> ``g_a/1``). Values are
    imported as stored (the raw reparameterized domain, like TF's variables).
    A whole model's state dict can be passed; other entries are ignored.

    The buffers ``<p>.beta_reparam.pedestal``, ``<p>.beta_reparam.lower_bound.bound`` and
    ``<p>.gamma_reparam.pedestal`` are honoured when present: the ``beta_min`` and
    ``reparam_offset`` they imply are returned, to be passed to :func:`cgdn.gdn`. A state
    dict does not say whether a layer is GDN, IGDN or GDN1: call ``gdn`` with
    ``inverse=True`` for IGDN and ``alpha=1, epsilon=1`` for GDN1.

    Parameters
    ----------
    state_dict : mapping of str to array_like (NumPy arrays or CPU torch tensors)
    store : ParameterStore, optional
    prefix : str, default ''
        Prepended to every scope.
    trainable : bool, default True

    Returns
    -------
    dict
        ``{scope: {"beta_min": float, "reparam_offset": float, "n_channels": int}}``.

    Raises
    ------
    ValueError
        If shapes disagree, values are not finite, or the buffers of one layer disagree
        with each other. The store is then unchanged.

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
    arrays, report = {}, {}
    for p in _compressai_prefixes(state_dict):
        beta = _as_numpy(state_dict[p + ".beta"], p + ".beta")
        gamma = _as_numpy(state_dict[p + ".gamma"], p + ".gamma")
        c = beta.shape[0] if beta.ndim == 1 else -1
        if gamma.ndim == 4 and gamma.shape[2:] == (1, 1):  # conv weight [out, in, 1, 1]
            gamma = gamma[:, :, 0, 0]
        if beta.ndim != 1 or gamma.shape != (c, c):
            raise ValueError(
                f"{p}: beta must be (C,) and gamma (C, C), got {beta.shape} and {gamma.shape}"
            )
        scope = _check_name(prefix + p.replace(".", "/"))
        arrays[f"{scope}/{BETA}"] = beta
        arrays[f"{scope}/{GAMMA}"] = np.ascontiguousarray(gamma.T)
        report[scope] = {**_compressai_settings(state_dict, p), "n_channels": c}
    _commit(store, arrays, trainable)
    return report


def _buffer(state_dict, key):
    """``(value, dtype)`` of a scalar buffer, or ``(None, None)`` when absent."""
    if key not in state_dict:
        return None, None
    value = _as_numpy(state_dict[key], key)
    if value.size != 1:
        raise ValueError(f"{key} must be a scalar buffer, got shape {value.shape}")
    return float(value.reshape(())), value.dtype


def _compressai_settings(state_dict, p):
    """``beta_min`` and ``reparam_offset`` implied by a layer's buffers (defaults if absent)."""
    beta_pedestal, _ = _buffer(state_dict, p + ".beta_reparam.pedestal")
    gamma_pedestal, _ = _buffer(state_dict, p + ".gamma_reparam.pedestal")
    beta_bound, bound_dtype = _buffer(state_dict, p + ".beta_reparam.lower_bound.bound")
    pedestals = [v for v in (beta_pedestal, gamma_pedestal) if v is not None]
    if len(pedestals) == 2 and not math.isclose(*pedestals, rel_tol=1e-6):
        raise ValueError(f"{p}: beta and gamma pedestals differ: {pedestals}")
    offset = math.sqrt(pedestals[0]) if pedestals else 2.0**-18
    if pedestals and not offset > 0:
        raise ValueError(f"{p}: pedestal must be > 0, got {pedestals[0]}")
    beta_min = 1e-6
    if beta_bound is not None:
        beta_min = max(0.0, beta_bound**2 - offset**2)
        if bound_dtype != np.float64:
            # A float32 bound carries ~7 significant digits: 1e-6 comes back as 1e-6,
            # not as 1.0000001e-06.
            beta_min = float(f"{beta_min:.6e}")
    return {"beta_min": beta_min, "reparam_offset": offset}


def export_compressai(store=None, *, scopes=None, beta_min=1e-6, reparam_offset=2.0**-18,
                      dtype=None):
    """Export layers of a store as a CompressAI-shaped dict of NumPy arrays.

    For each layer scope ``a/b`` the keys ``a.b.beta``, ``a.b.gamma`` (transposed to
    PyTorch's ``[out, in]``) and the reparameterization buffers are written, so
    ``{k: torch.from_numpy(v) for k, v in d.items()}`` loads into CompressAI's ``GDN``.
    :func:`import_compressai` of the result restores the store's values exactly.

    Parameters
    ----------
    store : ParameterStore, optional
    scopes : list of str, optional
        Layers to export; all GDN layers of the store by default.
    beta_min, reparam_offset : float
        Written into the buffers (``pedestal = reparam_offset**2``,
        ``bound = sqrt(beta_min + pedestal)``, gamma bound ``reparam_offset``).
    dtype : dtype, optional
        Dtype of the buffers; that of each layer's variables by default.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> import numpy as np
    >>> import cgdn
    >>> store = cgdn.ParameterStore()
    >>> _ = cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="gdn", store=store)
    >>> sorted(cgdn.export_compressai(store))[:3]
    ['gdn.beta', 'gdn.beta_reparam.lower_bound.bound', 'gdn.beta_reparam.pedestal']
    """
    store = check_store(store)
    with store.lock():
        layers = _check_gdn_pairs({name: store[name] for name in store}, source="store")
    if scopes is None:
        scopes = list(layers)
    result = {}
    pedestal = reparam_offset**2
    for scope in scopes:
        if scope not in layers:
            raise ValueError(f"no GDN layer {scope!r} in the store; it has {list(layers)}")
        beta, gamma = layers[scope][BETA], layers[scope][GAMMA]
        buf_dtype = dtype or beta.dtype
        p = scope.replace("/", ".")
        result[f"{p}.beta"] = np.array(beta)
        result[f"{p}.gamma"] = np.ascontiguousarray(gamma.T)
        result[f"{p}.beta_reparam.pedestal"] = np.array(pedestal, dtype=buf_dtype)
        result[f"{p}.beta_reparam.lower_bound.bound"] = np.array(
            math.sqrt(beta_min + pedestal), dtype=buf_dtype)
        result[f"{p}.gamma_reparam.pedestal"] = np.array(pedestal, dtype=buf_dtype)
        result[f"{p}.gamma_reparam.lower_bound.bound"] = np.array(
            math.sqrt(pedestal), dtype=buf_dtype)
    return result
