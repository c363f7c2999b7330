"""cgdn: Generalized Divisive Normalization (GDN / IGDN) on NumPy arrays, in Cython."""
from cgdn._version import __version__
from cgdn._gdn import apply_gdn
from cgdn._config import show_config

__all__ = ["apply_gdn", "show_config", "__version__"]
