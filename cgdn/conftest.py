"""Doctest collection of the installed package (``pytest --doctest-modules --pyargs
cgdn``): ``cgdn.torch`` needs torch, an optional dependency, so its examples are left out
where torch is not installed (``import cgdn.torch`` there is an ImportError that says so)."""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["torch.py"]
