"""Pick the kernel variant for this CPU: AVX-512, AVX2 or the portable baseline.

``CGDN_ISA=baseline|avx2|avx512`` in the environment forces a variant (for tests and
comparisons); asking for one the CPU cannot run falls back to the best one it can.
"""
import importlib
import os

from cgdn import _kernels as _baseline

_ORDER = ("avx512", "avx2")


def available():
    """Names of the variants that are built and runnable here, best first."""
    names = []
    for isa in _ORDER:
        if _baseline.cpu_supports(isa):
            try:
                importlib.import_module(f"cgdn._kernels_{isa}")
            except ImportError:
                continue
            names.append(isa)
    return names + ["baseline"]


def load(isa=None):
    """The kernel module for ``isa`` (default: ``CGDN_ISA`` or the best available)."""
    isa = isa or os.environ.get("CGDN_ISA", "").strip().lower() or None
    runnable = available()
    if isa not in runnable:
        isa = runnable[0]
    if isa == "baseline":
        return _baseline
    return importlib.import_module(f"cgdn._kernels_{isa}")


kernels = load()
