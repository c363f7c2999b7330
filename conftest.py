"""Collection of the source tree's documentation: the PyTorch page's examples need torch,
an optional dependency, and are left out where it is not installed."""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["docs/pytorch.md"]
