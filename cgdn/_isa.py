"""Pick the kernel variant for this CPU: AVX-512, AVX2 or the baseline.

Every variant is compiled into :mod:`cgdn._core` as a table of C kernels (one per
instruction set and dtype); a :class:`cgdn._core.Variant` carries one variant's tables
and the entry points that run on them. The baseline is SSE2 on x86-64 and NEON on
aarch64 (its ``ISA`` says which). ``CGDN_ISA=baseline|avx2|avx512|neon`` in the
environment forces a variant at import (for tests and comparisons); asking for one the
CPU cannot run falls back to the best one it can. A build made with
``CGDN_WIDE_EMULATION=1`` also has ``wide``, AVX-512's blockings in portable C for
testing on any CPU (listed before the baseline, never the default). :func:`use` switches
the variant the public functions run on at run time.
"""
import os
from contextlib import contextmanager

from cgdn import _core

# x86 variants need the CPU's support; the others (baseline, neon, wide) run anywhere
# this module was built for
_NEEDS_CPU = ("avx512", "avx2")
_BUILT = {variant.ISA: variant for variant in _core.variants()}


def available():
    """Names of the variants that are built and runnable here, best first."""
    return [isa for isa in _BUILT if isa not in _NEEDS_CPU or _core.cpu_supports(isa)]


def _default_of(names):
    return next(name for name in names if name != "wide")


def best():
    """The variant used by default: the first of :func:`available` that is not ``wide``."""
    return _default_of(available())


def load(isa=None):
    """The :class:`cgdn._core.Variant` for ``isa`` (default: ``CGDN_ISA`` or the best
    available)."""
    isa = isa or os.environ.get("CGDN_ISA", "").strip().lower() or None
    runnable = available()
    if isa not in runnable:
        isa = _default_of(runnable)
    return _BUILT[isa]


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
