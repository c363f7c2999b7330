# The GDN kernels compiled for: AVX2 + FMA. setup.py sets the flags; cgdn._isa picks
# the best variant this CPU runs. All variants share one body:
include "_kernels_impl.pxi"
