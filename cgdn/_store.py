"""The parameter store: the in-memory :class:`ParameterStore`, the process-wide default
store, and the adapter that gives a user's minimal store object the full interface.
The protocol a store implements is described in :mod:`cgdn.params`."""
import threading

import numpy as np

from cgdn._files import read_parameter_file, write_parameter_file
from cgdn._scopes import check_name
from cgdn._validation import as_real_array


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


def frozen(value):
    """A read-only C-contiguous copy of ``value``.

    The store keeps these and hands out fresh ones: writing to a handed-out array raises,
    and a caller who flips its flag back only changes their own copy, never the store.
    """
    arr = np.array(value, copy=True, order="C")
    arr.flags.writeable = False
    return arr


def check_variable_value(name, value, dtype=None):
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
        self._variables = {k: frozen(v) for k, v in state["variables"].items()}
        self._trainable = list(state["trainable"])
        self._losses = list(state["losses"])

    def lock(self):
        """Context manager holding the store's (re-entrant) lock."""
        return self._lock

    # -- mapping protocol --
    def __getitem__(self, name):
        with self._lock:
            try:
                return frozen(self._variables[name])
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
            arr = check_variable_value(name, value, current.dtype)
            if arr.shape != current.shape:
                raise ValueError(
                    f"value for {name!r} must have shape {current.shape}, got {arr.shape}"
                )
            self._variables[name] = frozen(arr)

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
            return default if arr is None else frozen(arr)

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
            return [(name, frozen(arr)) for name, arr in self._variables.items()]

    def create(self, name, value, *, trainable=True):
        """Add a new variable. ``ValueError`` if ``name`` exists."""
        check_name(name)
        arr = frozen(check_variable_value(name, value))
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
        write_parameter_file(path, arrays, trainable)

    @classmethod
    def load(cls, path, *, max_bytes=None):
        """A new store holding the variables of a file written by :meth:`save`.

        Files may come from anywhere, so reading is defensive: nothing is unpickled,
        and names, dtypes and shapes are checked from the archive's directory and the
        arrays' headers before anything is decompressed. A file is refused with a
        ``ValueError`` naming the entry if it is malformed, inconsistent (an entry
        decompressing to more than its shape implies), or would decompress to more
        than ``max_bytes`` in all (default 1 GiB). A file that cannot be opened raises
        the ``OSError`` of opening it (``FileNotFoundError``, ``PermissionError``, ...).
        """
        arrays, trainable = read_parameter_file(path, max_bytes=max_bytes)
        store = cls()
        with store._lock:
            for name, arr in arrays.items():
                store._variables[name] = frozen(arr)
            store._trainable = [n for n in arrays if n in trainable]
        return store

    def restore(self, path, *, max_bytes=None):
        """Assign the values of a saved file to this store's variables, all or nothing.

        The file must hold exactly this store's variable names, with the same shapes;
        otherwise ``ValueError`` and the store is unchanged. Read as :meth:`load` reads.
        """
        arrays, _ = read_parameter_file(path, max_bytes=max_bytes)
        with self._lock:
            missing = [n for n in self._variables if n not in arrays]
            extra = [n for n in arrays if n not in self._variables]
            if missing or extra:
                hint = ("" if not extra else
                        "; restore only assigns to variables the store already has: "
                        "cgdn.ParameterStore.load(path) makes a new store from a file")
                raise ValueError(f"{path!s} does not match the store: missing {missing}, "
                                 f"extra {extra}{hint}")
            for name, arr in arrays.items():
                if arr.shape != self._variables[name].shape:
                    raise ValueError(
                        f"{path!s}: {name!r} has shape {arr.shape}, the store's has "
                        f"{self._variables[name].shape}"
                    )
            for name, arr in arrays.items():
                self._variables[name] = frozen(arr.astype(self._variables[name].dtype))


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
