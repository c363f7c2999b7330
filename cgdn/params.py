"""Parameter storage for :func:`cgdn.gdn` and :class:`cgdn.GDN`: the store protocol and
the public names of the parameter side.

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

The parameter side is split by concern: ``cgdn._reparam`` (reparameterization),
``cgdn._store`` (stores), ``cgdn._scopes`` (scopes and reuse), ``cgdn._files`` (safe
``.npz`` files), ``cgdn._interop`` (importers, exporters, model converters) and
``cgdn._layer`` (layer objects). This module is their public facade.
"""
from cgdn._interop import (export_compressai, from_compressai, from_tfc,
                           import_compressai, import_tf_variables)
from cgdn._layer import GDN, load_layers, save_layers
from cgdn._reparam import BETA, GAMMA, reparam_init, reparam_value
from cgdn._scopes import AUTO_REUSE, current_scope, variable_scope
from cgdn._store import ActivityLoss, ParameterStore, get_default_store

__all__ = [
    "AUTO_REUSE",
    "ActivityLoss",
    "BETA",
    "GAMMA",
    "GDN",
    "ParameterStore",
    "current_scope",
    "export_compressai",
    "from_compressai",
    "from_tfc",
    "get_default_store",
    "import_compressai",
    "import_tf_variables",
    "load_layers",
    "reparam_init",
    "reparam_value",
    "save_layers",
    "variable_scope",
]
