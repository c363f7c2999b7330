"""cgdn: Generalized Divisive Normalization (GDN / IGDN) on NumPy arrays, in Cython."""
from cgdn._version import __version__
from cgdn._gdn import apply_gdn, gdn
from cgdn._config import show_config
from cgdn.params import (
    AUTO_REUSE,
    ParameterStore,
    export_compressai,
    get_default_store,
    import_compressai,
    import_tf_variables,
    variable_scope,
)

__all__ = [
    "AUTO_REUSE",
    "ParameterStore",
    "__version__",
    "apply_gdn",
    "export_compressai",
    "gdn",
    "get_default_store",
    "import_compressai",
    "import_tf_variables",
    "show_config",
    "variable_scope",
]
