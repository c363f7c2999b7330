/* The kernel variants linked into cgdn's core, best first (table.h). setup.py compiles
 * this file with -DCGDN_HAS_<NAME> for each variant it built (variant.c); the baseline
 * (no instruction-set flags: SSE2 on x86-64, NEON on aarch64) is always there. */
#include <stddef.h>

#include "table.h"

#define CGDN_DECLARE(name) extern const cgdn_kernels cgdn_##name##_f32, cgdn_##name##_f64;
#define CGDN_ENTRY(name) {&cgdn_##name##_f32, &cgdn_##name##_f64},

#ifdef CGDN_HAS_AVX512
CGDN_DECLARE(avx512)
#endif
#ifdef CGDN_HAS_AVX2
CGDN_DECLARE(avx2)
#endif
#ifdef CGDN_HAS_WIDE
CGDN_DECLARE(wide)
#endif
CGDN_DECLARE(baseline)

const cgdn_variant cgdn_variants[] = {
#ifdef CGDN_HAS_AVX512
    CGDN_ENTRY(avx512)
#endif
#ifdef CGDN_HAS_AVX2
    CGDN_ENTRY(avx2)
#endif
#ifdef CGDN_HAS_WIDE
    CGDN_ENTRY(wide)
#endif
    CGDN_ENTRY(baseline)
    {NULL, NULL},
};
