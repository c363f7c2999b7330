/* SIMD micro-kernels of cgdn (private).
 *
 * This header is compiled into every ISA variant of the kernels (baseline, AVX2,
 * AVX-512): the same source, different -m flags, one variant picked at import.
 * It holds only the innermost loops that plain Cython cannot express well:
 *
 *   cgdn_mix_few_*    channel mix for C <= 16 channels (channels_last): one pixel is one
 *                     short vector; pool = beta + sum_j f[j] * gamma[j, :] with gamma's
 *                     rows held as vectors (GCC/Clang vector extensions);
 *   cgdn_normalize_f32  out = x * n^-1/2 (GDN), x * n^1/2 (IGDN), x / n, x * n over a
 *                     contiguous run, with a reciprocal square root (or reciprocal)
 *                     estimate and one Newton step on AVX-512 / AVX, or exact sqrt and
 *                     division elsewhere.
 *
 * Callers guarantee every n is a finite normal positive number (the kernels check the
 * range first and send other pixels to the careful path), so the estimates never meet
 * 0, inf, NaN or subnormals.
 */
#ifndef CGDN_SIMD_H
#define CGDN_SIMD_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define CGDN_ISA_NAME "avx512"
#elif defined(__AVX2__)
#define CGDN_ISA_NAME "avx2"
#else
#define CGDN_ISA_NAME "baseline"
#endif

typedef ptrdiff_t cgdn_ssize;

/* Normalization modes (the kernels' Settings map onto these). */
enum { CGDN_GDN_SQRT = 0, CGDN_IGDN_SQRT = 1, CGDN_GDN_ONE = 2, CGDN_IGDN_ONE = 3 };

/* ---------------------------------------------------------------------------------- */
/* Channel mix for few channels, channels_last.                                        */
/*                                                                                    */
/* f      (n_pix, C) row-major pool inputs f(x)                                        */
/* gpad   (C, W) gamma rows, zero beyond column C (gamma[j, i]: input j -> output i)  */
/* bpad   (W,) beta, zero beyond C                                                     */
/* pool   (n_pix * C + W) output: pool[p, i] = beta[i] + sum_j f[p, j] gamma[j, i].     */
/*        Each pixel stores a whole W-vector at pool + p*C; the lanes beyond C spill    */
/*        into the next pixel's place and are overwritten by it (the last spill lands   */
/*        in the W-element pad). A pixel only ever reads its own f values.             */

#if defined(__GNUC__) || defined(__clang__)

/* P pixels per step, one accumulator each: independent FMA chains keep the FMA units
 * busy (one chain per pixel would wait on the FMA latency at every channel). */
#define CGDN_DEFINE_MIX_FEW(SUFFIX, T, W, P)                                            \
    static void cgdn_mix_few_##SUFFIX##_##W(const T *f, const T *gpad, const T *bpad,  \
                                            T *pool, cgdn_ssize n_pix, cgdn_ssize C) { \
        typedef T vec __attribute__((vector_size((W) * sizeof(T))));                   \
        vec g[W], b, acc[P];                                                            \
        cgdn_ssize p = 0, j;                                                            \
        int q;                                                                          \
        memcpy(&b, bpad, sizeof(vec));                                                  \
        for (j = 0; j < C; j++) memcpy(&g[j], gpad + j * (W), sizeof(vec));            \
        for (; p + (P) <= n_pix; p += (P)) {                                            \
            const T *fp = f + p * C;                                                    \
            for (q = 0; q < (P); q++) acc[q] = b;                                       \
            for (j = 0; j < C; j++)                                                     \
                for (q = 0; q < (P); q++) acc[q] += fp[q * C + j] * g[j];               \
            for (q = 0; q < (P); q++) memcpy(pool + (p + q) * C, &acc[q], sizeof(vec)); \
        }                                                                               \
        for (; p < n_pix; p++) {                                                        \
            const T *fp = f + p * C;                                                    \
            acc[0] = b;                                                                 \
            for (j = 0; j < C; j++) acc[0] += fp[j] * g[j];                             \
            memcpy(pool + p * C, &acc[0], sizeof(vec));                                 \
        }                                                                               \
    }

#else /* portable fallback: same contract, scalar loops */

#define CGDN_DEFINE_MIX_FEW(SUFFIX, T, W, P)                                            \
    static void cgdn_mix_few_##SUFFIX##_##W(const T *f, const T *gpad, const T *bpad,  \
                                            T *pool, cgdn_ssize n_pix, cgdn_ssize C) { \
        cgdn_ssize p, i, j;                                                             \
        for (p = 0; p < n_pix; p++) {                                                   \
            for (i = 0; i < C; i++) {                                                   \
                T acc = bpad[i];                                                        \
                for (j = 0; j < C; j++) acc += f[p * C + j] * gpad[j * (W) + i];        \
                pool[p * C + i] = acc;                                                  \
            }                                                                           \
        }                                                                               \
    }

#endif

CGDN_DEFINE_MIX_FEW(f32, float, 4, 8)
CGDN_DEFINE_MIX_FEW(f32, float, 8, 8)
CGDN_DEFINE_MIX_FEW(f32, float, 16, 4)
CGDN_DEFINE_MIX_FEW(f64, double, 4, 8)
CGDN_DEFINE_MIX_FEW(f64, double, 8, 4)
CGDN_DEFINE_MIX_FEW(f64, double, 16, 2)

/* Vector width used for C channels (C <= 16). */
static inline cgdn_ssize cgdn_few_width(cgdn_ssize C) { return C <= 4 ? 4 : (C <= 8 ? 8 : 16); }

static void cgdn_mix_few_f32(const float *f, const float *gpad, const float *bpad,
                             float *pool, cgdn_ssize n_pix, cgdn_ssize C) {
    cgdn_ssize w = cgdn_few_width(C);
    if (w == 4) cgdn_mix_few_f32_4(f, gpad, bpad, pool, n_pix, C);
    else if (w == 8) cgdn_mix_few_f32_8(f, gpad, bpad, pool, n_pix, C);
    else cgdn_mix_few_f32_16(f, gpad, bpad, pool, n_pix, C);
}

static void cgdn_mix_few_f64(const double *f, const double *gpad, const double *bpad,
                             double *pool, cgdn_ssize n_pix, cgdn_ssize C) {
    cgdn_ssize w = cgdn_few_width(C);
    if (w == 4) cgdn_mix_few_f64_4(f, gpad, bpad, pool, n_pix, C);
    else if (w == 8) cgdn_mix_few_f64_8(f, gpad, bpad, pool, n_pix, C);
    else cgdn_mix_few_f64_16(f, gpad, bpad, pool, n_pix, C);
}

/* ---------------------------------------------------------------------------------- */
/* Channel mix for few channels, channels_first: a slab of C rows of n positions.      */
/*                                                                                    */
/* pool[i, k] = beta[i] + sum_j gamma[j, i] f[j, k]. One vector holds consecutive       */
/* positions; all C accumulators of a vector of positions stay in registers, so f is    */
/* read and pool written once. C is a compile-time constant in each instantiation      */
/* (the switch below), which lets the compiler unroll the channel loops completely.     */

#if defined(__AVX512F__)
#define CGDN_VEC_BYTES 64
#elif defined(__AVX__)
#define CGDN_VEC_BYTES 32
#else
#define CGDN_VEC_BYTES 16
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CGDN_INLINE static inline __attribute__((always_inline))
/* NB output channels (a compile-time constant <= 16) from n_in input channels:        */
/* pool[i, k] = beta[i] + sum_j gamma[j * ldg + i] f[j, k], i < NB.                     */
#define CGDN_DEFINE_MIX_SLAB(SUFFIX, T)                                                  \
    CGDN_INLINE void cgdn_mix_slab_body_##SUFFIX(const T *f, const T *gamma,             \
                                                 cgdn_ssize ldg, const T *beta, T *pool, \
                                                 cgdn_ssize n, cgdn_ssize n_in,          \
                                                 const int NB) {                         \
        typedef T vec __attribute__((vector_size(CGDN_VEC_BYTES)));                      \
        enum { W = CGDN_VEC_BYTES / sizeof(T) };                                         \
        vec acc[16], fv;                                                                 \
        cgdn_ssize k = 0, j;                                                             \
        int i;                                                                           \
        for (; k + W <= n; k += W) {                                                     \
            for (i = 0; i < NB; i++) acc[i] = (vec){0} + beta[i];                        \
            for (j = 0; j < n_in; j++) {                                                 \
                const T *gj = gamma + j * ldg;                                           \
                memcpy(&fv, f + j * n + k, sizeof fv);                                   \
                for (i = 0; i < NB; i++) acc[i] += gj[i] * fv;                           \
            }                                                                            \
            for (i = 0; i < NB; i++) memcpy(pool + i * n + k, &acc[i], sizeof fv);       \
        }                                                                                \
        for (; k < n; k++) {                                                             \
            for (i = 0; i < NB; i++) {                                                   \
                T a = beta[i];                                                           \
                for (j = 0; j < n_in; j++) a += gamma[j * ldg + i] * f[j * n + k];       \
                pool[i * n + k] = a;                                                     \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    /* Output channels i0 .. i0 + nb - 1 (nb <= 16). With C <= 16 the one call passes  */ \
    /* constants for everything, and the channel loops unroll completely.              */ \
    CGDN_INLINE void cgdn_mix_slab_block_##SUFFIX(const T *f, const T *gamma,            \
                                                  cgdn_ssize ldg, const T *beta,         \
                                                  T *pool, cgdn_ssize n, cgdn_ssize n_in, \
                                                  cgdn_ssize nb) {                       \
        switch (nb) {                                                                    \
        case 1: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 1); break; \
        case 2: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 2); break; \
        case 3: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 3); break; \
        case 4: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 4); break; \
        case 5: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 5); break; \
        case 6: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 6); break; \
        case 7: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 7); break; \
        case 8: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 8); break; \
        case 9: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 9); break; \
        case 10: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 10); break; \
        case 11: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 11); break; \
        case 12: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 12); break; \
        case 13: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 13); break; \
        case 14: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 14); break; \
        case 15: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 15); break; \
        default: cgdn_mix_slab_body_##SUFFIX(f, gamma, ldg, beta, pool, n, n_in, 16); break; \
        }                                                                                \
    }                                                                                    \
    static void cgdn_mix_slab_few_##SUFFIX(const T *f, const T *gamma, const T *beta,    \
                                           T *pool, cgdn_ssize n, cgdn_ssize C) {        \
        switch (C) {                                                                     \
        case 1: cgdn_mix_slab_body_##SUFFIX(f, gamma, 1, beta, pool, n, 1, 1); break;     \
        case 2: cgdn_mix_slab_body_##SUFFIX(f, gamma, 2, beta, pool, n, 2, 2); break;     \
        case 3: cgdn_mix_slab_body_##SUFFIX(f, gamma, 3, beta, pool, n, 3, 3); break;     \
        case 4: cgdn_mix_slab_body_##SUFFIX(f, gamma, 4, beta, pool, n, 4, 4); break;     \
        case 5: cgdn_mix_slab_body_##SUFFIX(f, gamma, 5, beta, pool, n, 5, 5); break;     \
        case 6: cgdn_mix_slab_body_##SUFFIX(f, gamma, 6, beta, pool, n, 6, 6); break;     \
        case 7: cgdn_mix_slab_body_##SUFFIX(f, gamma, 7, beta, pool, n, 7, 7); break;     \
        case 8: cgdn_mix_slab_body_##SUFFIX(f, gamma, 8, beta, pool, n, 8, 8); break;     \
        case 9: cgdn_mix_slab_body_##SUFFIX(f, gamma, 9, beta, pool, n, 9, 9); break;     \
        case 10: cgdn_mix_slab_body_##SUFFIX(f, gamma, 10, beta, pool, n, 10, 10); break; \
        case 11: cgdn_mix_slab_body_##SUFFIX(f, gamma, 11, beta, pool, n, 11, 11); break; \
        case 12: cgdn_mix_slab_body_##SUFFIX(f, gamma, 12, beta, pool, n, 12, 12); break; \
        case 13: cgdn_mix_slab_body_##SUFFIX(f, gamma, 13, beta, pool, n, 13, 13); break; \
        case 14: cgdn_mix_slab_body_##SUFFIX(f, gamma, 14, beta, pool, n, 14, 14); break; \
        case 15: cgdn_mix_slab_body_##SUFFIX(f, gamma, 15, beta, pool, n, 15, 15); break; \
        default: cgdn_mix_slab_body_##SUFFIX(f, gamma, 16, beta, pool, n, 16, 16); break; \
        }                                                                                \
    }                                                                                    \
    /* Any C: output channels in blocks of 16; each block re-reads the slab of f.       */ \
    static void cgdn_mix_slab_many_##SUFFIX(const T *f, const T *gamma, const T *beta,   \
                                            T *pool, cgdn_ssize n, cgdn_ssize C) {       \
        cgdn_ssize i0;                                                                   \
        for (i0 = 0; i0 < C; i0 += 16)                                                   \
            cgdn_mix_slab_block_##SUFFIX(f, gamma + i0, C, beta + i0, pool + i0 * n, n, C, \
                                         C - i0 < 16 ? C - i0 : 16);                     \
    }
#else
#define CGDN_DEFINE_MIX_SLAB(SUFFIX, T)                                                  \
    static void cgdn_mix_slab_few_##SUFFIX(const T *f, const T *gamma, const T *beta,    \
                                           T *pool, cgdn_ssize n, cgdn_ssize C) {        \
        cgdn_ssize i, j, k;                                                              \
        for (i = 0; i < C; i++)                                                          \
            for (k = 0; k < n; k++) {                                                    \
                T a = beta[i];                                                           \
                for (j = 0; j < C; j++) a += gamma[j * C + i] * f[j * n + k];            \
                pool[i * n + k] = a;                                                     \
            }                                                                            \
    }                                                                                    \
    static void cgdn_mix_slab_many_##SUFFIX(const T *f, const T *gamma, const T *beta,   \
                                            T *pool, cgdn_ssize n, cgdn_ssize C) {       \
        cgdn_mix_slab_few_##SUFFIX(f, gamma, beta, pool, n, C);                          \
    }
#endif

/* few: C <= 16 is the caller's contract (SMALL_CHANNELS); many: any C. */
CGDN_DEFINE_MIX_SLAB(f32, float)
CGDN_DEFINE_MIX_SLAB(f64, double)

/* ---------------------------------------------------------------------------------- */
/* Channel mix for more channels, channels_last, AVX-512 only: an own register-blocked  */
/* GEMM, pool (n, C) = beta + f (n, C) @ gamma, used where it beats a BLAS call per tile.*/
/*                                                                                    */
/* gamma is packed once per call in panels of CGDN_PANEL(T) output channels: panel q   */
/* holds, for every input channel j, the row gamma[j, q*P : q*P + P] (zero-padded).    */
/* A block of 6 pixels x 1 panel keeps 24 accumulators in registers; each j costs 4    */
/* loads of gamma, 6 broadcasts of f and 24 FMAs. Pixels beyond a multiple of 6 run    */
/* one at a time. Every pixel only ever reads its own f values.                        */

#if defined(__AVX512F__)
#define CGDN_HAVE_OWN_GEMM 1

/* One instantiation per panel width K vectors (K = 4, 3, 2, 1) with R pixels per block,
 * R * K accumulators: 24 of the 32 vector registers. */
#define CGDN_DEFINE_OWN_GEMM_KR(SUFFIX, T, VEC, SFX, MASK, LANES, K, R)                  \
    static void cgdn_mix_gemm_##SUFFIX##_k##K(const T *f, const T *packed, const T *beta, \
                                              T *pool, cgdn_ssize n, cgdn_ssize C) {      \
        const cgdn_ssize P = (K) * LANES, n_panels = (C + P - 1) / P;                    \
        cgdn_ssize q, p, j;                                                              \
        int r, k;                                                                        \
        for (q = 0; q < n_panels; q++) {                                                 \
            const T *g = packed + q * C * P;                                             \
            MASK m[K];                                                                   \
            VEC b[K];                                                                    \
            for (k = 0; k < (K); k++) {                                                  \
                cgdn_ssize lo = q * P + k * LANES, left = C - lo;                        \
                m[k] = left >= LANES ? (MASK)~0 : (left > 0 ? (MASK)((1u << left) - 1u) : 0); \
                b[k] = _mm512_maskz_loadu_##SFX(m[k], beta + (lo < C ? lo : 0));         \
            }                                                                            \
            for (p = 0; p + (R) <= n; p += (R)) {                                        \
                VEC acc[R][K], gv[K];                                                    \
                const T *fp = f + p * C;                                                 \
                for (r = 0; r < (R); r++)                                                \
                    for (k = 0; k < (K); k++) acc[r][k] = b[k];                          \
                for (j = 0; j < C; j++) {                                                \
                    for (k = 0; k < (K); k++) gv[k] = _mm512_loadu_##SFX(g + j * P + k * LANES); \
                    for (r = 0; r < (R); r++) {                                          \
                        VEC v = _mm512_set1_##SFX(fp[r * C + j]);                        \
                        for (k = 0; k < (K); k++)                                        \
                            acc[r][k] = _mm512_fmadd_##SFX(v, gv[k], acc[r][k]);         \
                    }                                                                    \
                }                                                                        \
                for (r = 0; r < (R); r++)                                                \
                    for (k = 0; k < (K); k++)                                            \
                        if (m[k])                                                        \
                            _mm512_mask_storeu_##SFX(pool + (p + r) * C + q * P + k * LANES, \
                                                     m[k], acc[r][k]);                   \
            }                                                                            \
            for (; p < n; p++) {                                                         \
                VEC acc[K];                                                              \
                const T *fp = f + p * C;                                                 \
                for (k = 0; k < (K); k++) acc[k] = b[k];                                 \
                for (j = 0; j < C; j++) {                                                \
                    VEC v = _mm512_set1_##SFX(fp[j]);                                    \
                    for (k = 0; k < (K); k++)                                            \
                        acc[k] = _mm512_fmadd_##SFX(                                     \
                            v, _mm512_loadu_##SFX(g + j * P + k * LANES), acc[k]);       \
                }                                                                        \
                for (k = 0; k < (K); k++)                                                \
                    if (m[k])                                                            \
                        _mm512_mask_storeu_##SFX(pool + p * C + q * P + k * LANES, m[k], \
                                                 acc[k]);                                \
            }                                                                            \
        }                                                                                \
    }

/* Panel width, in vectors, for C channels: the widest of 4, 3, 2 that divides the
 * number of vectors a pixel needs (no lanes wasted), else 4 (the last panel masked). */
#define CGDN_DEFINE_OWN_GEMM(SUFFIX, T, VEC, SFX, MASK, LANES)                           \
    CGDN_DEFINE_OWN_GEMM_KR(SUFFIX, T, VEC, SFX, MASK, LANES, 4, 6)                      \
    CGDN_DEFINE_OWN_GEMM_KR(SUFFIX, T, VEC, SFX, MASK, LANES, 3, 8)                      \
    CGDN_DEFINE_OWN_GEMM_KR(SUFFIX, T, VEC, SFX, MASK, LANES, 2, 12)                     \
    static int cgdn_gemm_panel_##SUFFIX(cgdn_ssize C) {                                  \
        cgdn_ssize n_vec = (C + LANES - 1) / LANES;                                      \
        if (n_vec % 4 == 0) return 4;                                                    \
        if (n_vec % 3 == 0) return 3;                                                    \
        if (n_vec % 2 == 0) return 2;                                                    \
        return n_vec == 1 ? 2 : 4;                                                       \
    }                                                                                    \
    static cgdn_ssize cgdn_gemm_packed_size_##SUFFIX(cgdn_ssize C) {                     \
        cgdn_ssize P = cgdn_gemm_panel_##SUFFIX(C) * LANES;                              \
        return ((C + P - 1) / P) * C * P;                                                \
    }                                                                                    \
    static void cgdn_pack_gamma_##SUFFIX(const T *gamma, T *packed, cgdn_ssize C) {      \
        const cgdn_ssize P = cgdn_gemm_panel_##SUFFIX(C) * LANES, n_panels = (C + P - 1) / P; \
        cgdn_ssize q, j, i;                                                              \
        for (q = 0; q < n_panels; q++)                                                   \
            for (j = 0; j < C; j++)                                                      \
                for (i = 0; i < P; i++)                                                  \
                    packed[(q * C + j) * P + i] = (q * P + i < C) ? gamma[j * C + q * P + i] \
                                                                  : (T)0;                \
    }                                                                                    \
    static void cgdn_mix_gemm_##SUFFIX(const T *f, const T *packed, const T *beta,       \
                                       T *pool, cgdn_ssize n, cgdn_ssize C) {            \
        switch (cgdn_gemm_panel_##SUFFIX(C)) {                                           \
        case 2: cgdn_mix_gemm_##SUFFIX##_k2(f, packed, beta, pool, n, C); break;         \
        case 3: cgdn_mix_gemm_##SUFFIX##_k3(f, packed, beta, pool, n, C); break;         \
        default: cgdn_mix_gemm_##SUFFIX##_k4(f, packed, beta, pool, n, C); break;        \
        }                                                                                \
    }

CGDN_DEFINE_OWN_GEMM(f32, float, __m512, ps, __mmask16, 16)
CGDN_DEFINE_OWN_GEMM(f64, double, __m512d, pd, __mmask8, 8)

#else
#define CGDN_HAVE_OWN_GEMM 0
/* Never called without AVX-512 (the kernels check CGDN_HAVE_OWN_GEMM); defined so that
 * every variant links the same names. */
static cgdn_ssize cgdn_gemm_packed_size_f32(cgdn_ssize C) { (void)C; return 1; }
static cgdn_ssize cgdn_gemm_packed_size_f64(cgdn_ssize C) { (void)C; return 1; }
static void cgdn_pack_gamma_f32(const float *g, float *p, cgdn_ssize C) { (void)g; (void)p; (void)C; }
static void cgdn_pack_gamma_f64(const double *g, double *p, cgdn_ssize C) { (void)g; (void)p; (void)C; }
static void cgdn_mix_gemm_f32(const float *f, const float *p, const float *b, float *o,
                              cgdn_ssize n, cgdn_ssize C) { (void)f; (void)p; (void)b; (void)o; (void)n; (void)C; }
static void cgdn_mix_gemm_f64(const double *f, const double *p, const double *b, double *o,
                              cgdn_ssize n, cgdn_ssize C) { (void)f; (void)p; (void)b; (void)o; (void)n; (void)C; }
#endif

/* ---------------------------------------------------------------------------------- */
/* Normalization over a contiguous run: out[k] = g(x[k], n[k]) for the four fast modes. */
/* x may be rectified first (max(x, 0), NaN kept). out may be x.                        */

/* Exact square roots and divisions: float64 everywhere, float32 without AVX. The same
 * loop per dtype; -fno-math-errno lets the compiler vectorize sqrt. */
#define CGDN_DEFINE_NORMALIZE_EXACT(SUFFIX, T, SQRT)                                     \
    static void cgdn_normalize_exact_##SUFFIX(const T *x, const T *n, T *out,            \
                                              cgdn_ssize count, int mode, int rectify) { \
        cgdn_ssize k;                                                                    \
        switch (mode) {                                                                  \
        case CGDN_GDN_SQRT:                                                              \
            for (k = 0; k < count; k++)                                                  \
                out[k] = ((rectify && x[k] < 0) ? (T)0 : x[k]) / SQRT(n[k]);             \
            break;                                                                       \
        case CGDN_IGDN_SQRT:                                                             \
            for (k = 0; k < count; k++)                                                  \
                out[k] = ((rectify && x[k] < 0) ? (T)0 : x[k]) * SQRT(n[k]);             \
            break;                                                                       \
        case CGDN_GDN_ONE:                                                               \
            for (k = 0; k < count; k++)                                                  \
                out[k] = ((rectify && x[k] < 0) ? (T)0 : x[k]) / n[k];                   \
            break;                                                                       \
        default:                                                                         \
            for (k = 0; k < count; k++)                                                  \
                out[k] = ((rectify && x[k] < 0) ? (T)0 : x[k]) * n[k];                   \
            break;                                                                       \
        }                                                                                \
    }

CGDN_DEFINE_NORMALIZE_EXACT(f64, double, sqrt)

#if defined(__AVX512F__)

static inline __m512 cgdn_apply16(__m512 v, __m512 nv, int mode) {
    const __m512 half = _mm512_set1_ps(0.5f), three_halves = _mm512_set1_ps(1.5f);
    const __m512 two = _mm512_set1_ps(2.0f);
    __m512 r;
    switch (mode) {
    case CGDN_GDN_SQRT:   /* r ~ n^-1/2, one Newton step: r (1.5 - 0.5 n r^2) */
    case CGDN_IGDN_SQRT:
        r = _mm512_rsqrt14_ps(nv);
        r = _mm512_mul_ps(r, _mm512_fnmadd_ps(_mm512_mul_ps(half, nv), _mm512_mul_ps(r, r),
                                              three_halves));
        if (mode == CGDN_IGDN_SQRT) r = _mm512_mul_ps(nv, r);      /* n^1/2 = n n^-1/2 */
        return _mm512_mul_ps(v, r);
    case CGDN_GDN_ONE:    /* r ~ 1/n, one Newton step: r (2 - n r) */
        r = _mm512_rcp14_ps(nv);
        r = _mm512_mul_ps(r, _mm512_fnmadd_ps(nv, r, two));
        return _mm512_mul_ps(v, r);
    default:
        return _mm512_mul_ps(v, nv);
    }
}

static void cgdn_normalize_f32(const float *x, const float *n, float *out, cgdn_ssize count,
                               int mode, int rectify) {
    const __m512 zero = _mm512_setzero_ps();
    cgdn_ssize k = 0;
    for (; k + 16 <= count; k += 16) {
        __m512 v = _mm512_loadu_ps(x + k);
        if (rectify) v = _mm512_max_ps(zero, v);   /* NaN in v is returned as is */
        _mm512_storeu_ps(out + k, cgdn_apply16(v, _mm512_loadu_ps(n + k), mode));
    }
    if (k < count) {
        __mmask16 m = (__mmask16)((1u << (count - k)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        __m512 nv = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, n + k);
        if (rectify) v = _mm512_max_ps(zero, v);
        _mm512_mask_storeu_ps(out + k, m, cgdn_apply16(v, nv, mode));
    }
}

#elif defined(__AVX__) && defined(__FMA__)

static inline __m256 cgdn_apply8(__m256 v, __m256 nv, int mode) {
    const __m256 half = _mm256_set1_ps(0.5f), three_halves = _mm256_set1_ps(1.5f);
    const __m256 two = _mm256_set1_ps(2.0f);
    __m256 r;
    switch (mode) {
    case CGDN_GDN_SQRT:
    case CGDN_IGDN_SQRT:
        r = _mm256_rsqrt_ps(nv);
        r = _mm256_mul_ps(r, _mm256_fnmadd_ps(_mm256_mul_ps(half, nv), _mm256_mul_ps(r, r),
                                              three_halves));
        if (mode == CGDN_IGDN_SQRT) r = _mm256_mul_ps(nv, r);
        return _mm256_mul_ps(v, r);
    case CGDN_GDN_ONE:
        r = _mm256_rcp_ps(nv);
        r = _mm256_mul_ps(r, _mm256_fnmadd_ps(nv, r, two));
        return _mm256_mul_ps(v, r);
    default:
        return _mm256_mul_ps(v, nv);
    }
}

static void cgdn_normalize_f32(const float *x, const float *n, float *out, cgdn_ssize count,
                               int mode, int rectify) {
    const __m256 zero = _mm256_setzero_ps();
    cgdn_ssize k = 0;
    for (; k + 8 <= count; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        if (rectify) v = _mm256_max_ps(zero, v);
        _mm256_storeu_ps(out + k, cgdn_apply8(v, _mm256_loadu_ps(n + k), mode));
    }
    if (k < count) {  /* the tail through a padded copy: the same arithmetic as above */
        float xb[8] = {0}, nb[8] = {1, 1, 1, 1, 1, 1, 1, 1}, ob[8];
        memcpy(xb, x + k, (size_t)(count - k) * sizeof(float));
        memcpy(nb, n + k, (size_t)(count - k) * sizeof(float));
        __m256 v = _mm256_loadu_ps(xb);
        if (rectify) v = _mm256_max_ps(zero, v);
        _mm256_storeu_ps(ob, cgdn_apply8(v, _mm256_loadu_ps(nb), mode));
        memcpy(out + k, ob, (size_t)(count - k) * sizeof(float));
    }
}

#else

CGDN_DEFINE_NORMALIZE_EXACT(f32, float, sqrtf)

static void cgdn_normalize_f32(const float *x, const float *n, float *out, cgdn_ssize count,
                               int mode, int rectify) {
    cgdn_normalize_exact_f32(x, n, out, count, mode, rectify);
}

#endif

static void cgdn_normalize_f64(const double *x, const double *n, double *out,
                               cgdn_ssize count, int mode, int rectify) {
    cgdn_normalize_exact_f64(x, n, out, count, mode, rectify);
}

/* ---------------------------------------------------------------------------------- */
/* Range check: whether any n is not a positive, finite, normal number (0, subnormal,  */
/* negative, inf or NaN). On the bit patterns this is one unsigned comparison, which     */
/* vectorizes everywhere.                                                              */

#include <stdint.h>

static int cgdn_any_out_of_range_f32(const float *n, cgdn_ssize count) {
    uint32_t bad = 0, bits;
    cgdn_ssize k;
    for (k = 0; k < count; k++) {
        memcpy(&bits, n + k, sizeof bits);
        bad |= (uint32_t)(bits - 0x00800000u) > (uint32_t)(0x7F7FFFFFu - 0x00800000u);
    }
    return bad != 0;
}

static int cgdn_any_out_of_range_f64(const double *n, cgdn_ssize count) {
    uint64_t bad = 0, bits;
    cgdn_ssize k;
    for (k = 0; k < count; k++) {
        memcpy(&bits, n + k, sizeof bits);
        bad |= (uint64_t)(bits - 0x0010000000000000ull) >
               (uint64_t)(0x7FEFFFFFFFFFFFFFull - 0x0010000000000000ull);
    }
    return bad != 0;
}

/* CPU features, for picking a variant at import (GCC/Clang; the OS's support for the
 * wider registers is checked by the builtin too). */
static int cgdn_cpu_supports(const char *isa) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)isa;
#endif
    return 0;
}

#endif /* CGDN_SIMD_H */
