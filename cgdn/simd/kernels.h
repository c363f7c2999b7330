/* The SIMD kernels of cgdn (private), for the instruction set this module is compiled
 * for (vec.h), instantiated per dtype: every kernel family is included once with
 * float32 bound (names ending in _f32) and once with float64 (_f64). Cython sees them
 * through cgdn/_simd.pxd. */
#ifndef CGDN_KERNELS_H
#define CGDN_KERNELS_H

#include <float.h>

#include "vec.h"

#include "bind_f32.h"
#include "normalize.h"
#include "gemm.h"
#include "fused.h"
#include "range.h"
#include "unbind.h"

#include "bind_f64.h"
#include "normalize.h"
#include "gemm.h"
#include "fused.h"
#include "range.h"
#include "unbind.h"

#endif /* CGDN_KERNELS_H */
