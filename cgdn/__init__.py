"""cgdn: Generalized Divisive Normalization (GDN / IGDN) on NumPy arrays, in Cython."""
from cgdn._version import __version__
from cgdn._gdn import apply_gdn, gdn
from cgdn._config import show_config
from cgdn._density import (ConvergenceWarning, gdn_grads, gdn_inverse, gdn_logdet,
                           gdn_vjp)
from cgdn.params import (
    AUTO_REUSE,
    GDN,
    ParameterStore,
    export_compressai,
    from_compressai,
    from_tfc,
    get_default_store,
    import_compressai,
    import_tf_variables,
    load_layers,
    save_layers,
    variable_scope,
)

__all__ = [
    "AUTO_REUSE",
    "ConvergenceWarning",
    "GDN",
    "ParameterStore",
    "__version__",
    "apply_gdn",
    "export_compressai",
    "from_compressai",
    "from_tfc",
    "gdn",
    "gdn_grads",
    "gdn_inverse",
    "gdn_logdet",
    "gdn_vjp",
    "get_default_store",
    "import_compressai",
    "import_tf_variables",
    "load_layers",
    "save_layers",
    "show_config",
    "variable_scope",
]
