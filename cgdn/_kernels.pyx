# The GDN kernels compiled for the baseline: no -m flags, i.e. SSE2 on x86-64 and NEON on
# aarch64 (cgdn/simd/vec.h picks the primitives). setup.py sets the flags; cgdn._isa picks
# the best variant this CPU runs. This module also answers which variants the CPU runs.
# All variants share one body:
include "_kernels_impl.pxi"

cdef extern from "simd/cpu.h" nogil:
    int cgdn_cpu_supports(const char* isa)


def cpu_supports(isa):
    """Whether this CPU (and OS) can run the kernels built for ``isa``: 'avx2', 'avx512'."""
    return bool(cgdn_cpu_supports(isa.encode()))


def parameter_status(const floating[::1] values):
    """0 if every value is finite and >= 0; 1 if one is NaN or infinite; 2 if one is
    negative (and all are finite). One pass without the GIL, so that checking a
    parameter costs less than NumPy's reductions on small arrays."""
    cdef int status
    with nogil:
        status = _status(&values[0], values.shape[0]) if values.shape[0] else 0
    return status
