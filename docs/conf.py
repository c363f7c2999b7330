"""Sphinx configuration of cgdn's documentation (build: python -m sphinx -W -b html docs
docs/_build/html)."""
import cgdn

project = "cgdn"
author = "the cgdn developers"
copyright = "2026, the cgdn developers"
version = release = cgdn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
# the theme of NumPy, SciPy and scikit-learn: wide tables scroll inside the text column,
# and the page's sections are listed beside it
html_theme = "pydata_sphinx_theme"
html_title = f"cgdn {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2,
                      "secondary_sidebar_items": ["page-toc"]}

# cgdn.torch's reference needs torch, an optional dependency: without it that page is left
# out, and so is its line in the index's table of contents
try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False
    exclude_patterns += ["api-torch.rst", "generated/cgdn.torch.*"]


def _drop_torch_reference(app, docname, source):
    if docname == "index" and not HAVE_TORCH:
        source[0] = source[0].replace("\napi-torch\n", "\n")


def setup(app):
    app.connect("source-read", _drop_torch_reference)
