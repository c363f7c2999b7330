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
html_theme = "alabaster"
html_title = f"cgdn {release}"
