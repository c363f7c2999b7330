/* One kernel variant of cgdn for one dtype: everything that runs inside a tile, compiled
 * for one instruction set (the compiler flags pick the primitives, vec.h) and exported
 * as one const table (table.h). setup.py compiles this file once per variant and dtype,
 * with -DCGDN_VARIANT=<name> and -DCGDN_DTYPE=32 or 64; the table is then named
 * cgdn_<name>_f32 or cgdn_<name>_f64, and registry.c lists the variants built.
 *
 * The kernel families (normalize.h, gemm.h, fused.h, range.h, tile.h) are plain C
 * written once against the generic names that bind_f32.h / bind_f64.h give. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "table.h"
#include "vec.h"

#if CGDN_DTYPE == 32
#include "bind_f32.h"
#define CGDN_DTYPE_SUFFIX _f32
#elif CGDN_DTYPE == 64
#include "bind_f64.h"
#define CGDN_DTYPE_SUFFIX _f64
#else
#error "compile with -DCGDN_DTYPE=32 or -DCGDN_DTYPE=64"
#endif

#ifndef CGDN_VARIANT
#error "compile with -DCGDN_VARIANT=<name>"
#endif

#include "normalize.h"
#include "gemm.h"
#include "fused.h"
#include "range.h"
#include "tile.h"

#define CGDN_TABLE_NAME_(variant, suffix) cgdn_##variant##suffix
#define CGDN_TABLE_NAME(variant, suffix) CGDN_TABLE_NAME_(variant, suffix)

const cgdn_kernels CGDN_TABLE_NAME(CGDN_VARIANT, CGDN_DTYPE_SUFFIX) = {
    CGDN_ISA_NAME,
    CGDN_NREG,
    CGDN_KMAX,
    LANES,
    (ptrdiff_t)sizeof(real),
    tile_mixer_shared,
    tile_mixer_size,
    tile_make_mixer,
    tile_plan,
    tile_last,
    tile_first,
    tile_pixel_bad,
#if CGDN_DTYPE == 64
    tile_gemm_plain,
#else
    NULL,   /* the density functions' products are float64 only */
#endif
};
