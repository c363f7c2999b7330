/* cgdn's vector layer: which instructions, chosen by the compiler flags of the module
 * being built (setup.py compiles the kernels once per instruction set).
 *
 * Each primitive header defines, for float32 (f32) and float64 (f64):
 *   cgdn_vf32          the vector type; CGDN_F32_LANES lanes
 *   load, store        unaligned full vectors
 *   load_tail          the first n lanes (0 < n <= LANES), the others set to `fill`
 *   store_tail         the first n lanes only
 *   set1, fma (a*b+c), fnma (c-a*b), mul, add, div, sqrt, rectify (v < 0 -> +0),
 *                      abs (sign bit cleared)
 *   rsqrt_est, rcp_est estimates, refined by CGDN_F32_EST_STEPS Newton steps (0: the
 *                      kernels use exact sqrt and division instead)
 *   perm_make, permute lane permutation (if CGDN_F32_HAS_PERMUTE)
 *   quad_splat         (if CGDN_F32_HAS_QUADS) in each group of 2 or 4 lanes, one lane
 *                      copied to the group's lanes by an immediate shuffle
 *   transpose_load, transpose_store
 *                      a block of LANES rows by w <= LANES columns to its columns, one
 *                      vector each, and back; `reach` (>= w) says how many columns of
 *                      each row may be read or written whole (if CGDN_F32_HAS_TRANSPOSE);
 *                      rows of 3 that lie next to each other (row stride 3, w = 3) may
 *                      take a cheaper path of the ISA's own
 *   range_init, range_fold, range_ok
 *                      a range check folded over many vectors: whether every lane
 *                      seen lies in the pool range below (the state type is cgdn_rf32;
 *                      each ISA picks its cheapest independent operations)
 * and CGDN_ISA_NAME and CGDN_NREG, the number of vector registers.
 *
 * Intrinsics appear only in those headers: the kernel families (gemm.h, normalize.h,
 * range.h) are plain C written against these names, once. */
#ifndef CGDN_VEC_H
#define CGDN_VEC_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The pool range: the values of beta + pool the fast arithmetic takes, positive and normal
 * and at most 2^125 (float32) or 2^1021 (float64), so that 1/n and n^-1/2 are normal too
 * (the reciprocal estimates flush results below the smallest normal to zero: 1/n for n in
 * (2^126, FLT_MAX] would be 0, not the normal number it is). Pools outside it go to the
 * careful path. As values and as bit patterns (of positive numbers, ordered alike). */
#define CGDN_F32_POOL_MIN FLT_MIN
#define CGDN_F32_POOL_MAX 4.2535295865117308e+37f            /* 2^125 */
#define CGDN_F32_POOL_MIN_BITS 0x00800000u
#define CGDN_F32_POOL_MAX_BITS 0x7E000000u
#define CGDN_F64_POOL_MIN DBL_MIN
#define CGDN_F64_POOL_MAX 2.2471164185778949e+307             /* 2^1021 */
#define CGDN_F64_POOL_MIN_BITS 0x0010000000000000ull
#define CGDN_F64_POOL_MAX_BITS 0x7FC0000000000000ull

#if defined(CGDN_FORCE_SCALAR)  /* for testing the portable fallback */
#include "vec_scalar.h"
#elif defined(CGDN_EMULATE_WIDE)  /* for testing AVX-512's blockings on any CPU */
#include "vec_wide.h"
#elif defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#include "vec_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "vec_avx2.h"
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include "vec_neon.h"
#elif defined(__SSE2__) || defined(_M_X64)
#include "vec_sse2.h"
#else
#include "vec_scalar.h"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CGDN_INLINE static inline __attribute__((always_inline))
#define CGDN_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define CGDN_INLINE static __forceinline
#define CGDN_NOINLINE __declspec(noinline)
#else
#define CGDN_INLINE static inline
#define CGDN_NOINLINE
#endif

/* Register blocking of the GEMM micro-kernel (gemm.h), derived from the register file:
 * a block of R rows x K vectors holds R*K accumulators, K vectors of the streamed
 * operand and one broadcast, all in registers. K is at most CGDN_KMAX (4 with 32
 * registers, 3 with 16); R is the most rows that still fit, at most CGDN_RMAX.
 *   AVX2, SSE2 (16 registers): K=1..3 -> R = 12, 6, 4
 *   AVX-512, NEON (32):        K=1..4 -> R = 12, 12, 9, 6 */
#define CGDN_KMAX (CGDN_NREG >= 32 ? 4 : 3)
#define CGDN_RMAX 12
#define CGDN_ROWS_FIT(K) ((CGDN_NREG - (K) - 1) / (K))
#define CGDN_ROWS(K) (CGDN_ROWS_FIT(K) < CGDN_RMAX ? CGDN_ROWS_FIT(K) : CGDN_RMAX)

/* Data the innermost GEMM loop re-reads should stay in the L1 data cache: 32 KiB on
 * most x86 and Arm cores of the last decade (48 KiB on recent Intel cores). */
#ifndef CGDN_L1_BYTES
#define CGDN_L1_BYTES 32768
#endif

/* Normalization modes: y = x / n^(1/2), x * n^(1/2), x / n, x * n; and, for the GEMM
 * (gemm.h), "store the pools, do not normalize". */
enum { CGDN_GDN_SQRT = 0, CGDN_IGDN_SQRT = 1, CGDN_GDN_ONE = 2, CGDN_IGDN_ONE = 3,
       CGDN_STORE_POOL = -1 };

/* `return EXPR;` with M, in EXPR, a compile-time constant equal to the run-time `mode`: one
 * copy of EXPR per normalization mode, for kernels whose mode must be a constant. */
#define CGDN_RETURN_BY_MODE(mode, EXPR)                                                       \
    switch (mode) {                                                                           \
    case CGDN_GDN_SQRT: { enum { M = CGDN_GDN_SQRT }; return EXPR; }                          \
    case CGDN_IGDN_SQRT: { enum { M = CGDN_IGDN_SQRT }; return EXPR; }                        \
    case CGDN_GDN_ONE: { enum { M = CGDN_GDN_ONE }; return EXPR; }                            \
    default: { enum { M = CGDN_IGDN_ONE }; return EXPR; }                                     \
    }

#endif /* CGDN_VEC_H */
