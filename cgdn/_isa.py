"""Pick the kernel variant for this CPU: AVX-512, AVX2 or the baseline.

The baseline module is SSE2 on x86-64 and NEON on aarch64 (its ``ISA`` says which).
``CGDN_ISA=baseline|avx2|avx512|neon`` in the environment forces a variant at import (for
tests and comparisons); asking for one the CPU cannot run falls back to the best one it
can. A build made with ``CGDN_WIDE_EMULATION=1`` also has ``wide``, AVX-512's blockings in
portable C for testing on any CPU (listed before the baseline, never the default).
:func:`use` switches the variant the public functions run on at run time.
"""
import functools
import importlib
import os
from contextlib import contextmanager

from cgdn import _kernels as _baseline

_X86_ORDER = ("avx512", "avx2")


def available():
    """Names of the variants that are built and runnable here, best first."""
    names = []
    for isa in _X86_ORDER:
        if _baseline.cpu_supports(isa):
            try:
                importlib.import_module(f"cgdn._kernels_{isa}")
            except ImportError:
                continue
            names.append(isa)
    if _wide_built():
        names.append("wide")
    return names + [_baseline.ISA]


@functools.lru_cache(maxsize=None)
def _wide_built():
    """Whether this build has the variant ``wide`` (AVX-512's blockings emulated in
    portable C, for maintainers' checks). Asked once: a failed import is not cached."""
    try:
        importlib.import_module("cgdn._kernels_wide")
    except ImportError:
        return False
    return True


def _default_of(names):
    return next(name for name in names if name != "wide")


def best():
    """The variant used by default: the first of :func:`available` that is not ``wide``."""
    return _default_of(available())


def load(isa=None):
    """The kernel module for ``isa`` (default: ``CGDN_ISA`` or the best available)."""
    isa = isa or os.environ.get("CGDN_ISA", "").strip().lower() or None
    runnable = available()
    if isa not in runnable:
        isa = _default_of(runnable)
    if isa == _baseline.ISA:
        return _baseline
    return importlib.import_module(f"cgdn._kernels_{isa}")


kernels = load()


@contextmanager
def use(isa):
    """Run the public functions on variant ``isa`` inside the block (tests, benchmarks).

    Not for concurrent use with other threads calling cgdn: the switch is process-wide.
    """
    global kernels
    if isa not in available():
        raise ValueError(f"isa must be one of {available()}, got {isa!r}")
    previous, kernels = kernels, load(isa)
    try:
        yield kernels
    finally:
        kernels = previous
