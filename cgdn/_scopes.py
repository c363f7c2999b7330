"""Variable scopes and TensorFlow's reuse rules: how a layer's variables are named,
found or created in a store."""
import contextlib
import re
import threading

import numpy as np

from cgdn._reparam import BETA, GAMMA, initial_variables


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


def check_scope_name(name, what="name"):
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str or None, got {type(name).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*", name):
        raise ValueError(
            f"{what} must be non-empty and made of letters, digits, '_', '.', '-' "
            f"(with '/' between parts), got {name!r}"
        )
    return name


def check_name(name):
    """A variable's full name: ``scope/.../variable``, parts not empty (the store's rule;
    :func:`check_scope_name` is the stricter rule for names users give)."""
    if not isinstance(name, str):
        raise TypeError(f"variable names must be str, got {type(name).__name__}")
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        raise ValueError(f"invalid variable name {name!r}: use 'scope/.../variable'")
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
    check_scope_name(name)
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
                  trainable, shape_hint=None):
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
                f"{want_gamma}{_format_hint(beta.shape, shape_hint)}"
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


def _format_hint(stored_shape, shape_hint):
    """The end of a channel-mismatch message: a data_format hint when the input's other
    candidate channel axis has the stored length, else advice to use another name."""
    if len(stored_shape) == 1 and shape_hint is not None:
        shape, data_format = shape_hint
        expected = stored_shape[0]
        other, other_format = ((1, "channels_first") if data_format == "channels_last"
                               else (len(shape) - 1, "channels_last"))
        if len(shape) > 2 and shape[other] == expected:
            return (f". The inputs {shape} have {expected} on axis {other}: are they "
                    f"{other_format}? (pass data_format={other_format!r})")
    n = stored_shape[0] if stored_shape else "?"
    return f"; use another name for a layer with another channel count than {n}"


def _unique_layer_name(store, prefix, base="gdn"):
    names = set(store)
    index = 0
    while True:
        layer = prefix + (base if index == 0 else f"{base}_{index}")
        if f"{layer}/{BETA}" not in names and f"{layer}/{GAMMA}" not in names:
            return layer
        index += 1
