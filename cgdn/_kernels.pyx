# The GDN kernels compiled for: baseline (no -m flags: SSE2 on x86-64). setup.py sets the flags; cgdn._isa picks
# the best variant this CPU runs. All variants share one body:
include "_kernels_impl.pxi"
