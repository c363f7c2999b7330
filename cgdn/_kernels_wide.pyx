# The GDN kernels compiled against cgdn/simd/vec_wide.h: AVX-512's register count and
# widths in portable C, for testing those blockings on any CPU (slow; never the default).
# Built only with CGDN_WIDE_EMULATION=1 (tools/check_wide.sh). All variants share one body:
include "_kernels_impl.pxi"
