/* The interface between cgdn's core (cgdn/_core.pyx, compiled once, without instruction-set
 * flags) and its kernel variants (cgdn/simd/variant.c, compiled once per instruction set
 * and dtype). A variant exports one const table per dtype; the core picks a variant at
 * import (cgdn._isa) and calls its table once per tile. Plain C: no Python, no OpenMP.
 *
 * Every pointer argument is of the table's dtype (float for the float32 table, double
 * for the float64 one); the table's functions take them as void pointers so that the
 * core drives both dtypes with one loop. */
#ifndef CGDN_TABLE_H
#define CGDN_TABLE_H

#include <stddef.h>

/* The pool input f(v): v * v (alpha = 2), |v| (alpha = 1), |v| ** alpha (any other). */
enum { CGDN_POOL_SQUARE = 0, CGDN_POOL_ABS = 1, CGDN_POOL_POW = 2 };

/* What a call computes (cgdn.apply_gdn's arguments, resolved once per call). */
typedef struct cgdn_settings {
    int pool_mode;      /* CGDN_POOL_* */
    int fast_mode;      /* a normalization mode (CGDN_GDN_SQRT .. CGDN_IGDN_ONE, vec.h), or
                           -1: y = x / n ** epsilon (x * for IGDN) by pow */
    double alpha, epsilon;
    int inverse, rectify;
} cgdn_settings;

/* A call's parameters as its tiles read them, and the paths the variant takes for them
 * (filled by the table's `plan`). */
typedef struct cgdn_tile {
    const void *beta;   /* (C,) */
    const void *gamma;  /* (C, C): gamma[j, i], j = input channel */
    const void *mixer;  /* `make_mixer`'s, or gamma itself where `mixer_shared` */
    ptrdiff_t n_ch;
    int fused;          /* channels_last: few channels, one pass per tile */
    int fused_wide;     /* channels_last: more than a GEMM panel, one pass per tile */
    int fused_planes;   /* channels_first: few channels, one pass per tile */
    int slab_norm;      /* channels_first: the mix normalizes its blocks (two passes) */
    double gamma_max;   /* an upper bound of gamma's entries (inf if not known), for plan */
    int underflow_risk; /* gamma so large against beta that a pool input f(x) which
                           underflows (a subnormal or zero |x| ** alpha of a non-zero x)
                           could change a pool: such pixels take the careful path */
} cgdn_tile;

typedef struct cgdn_kernels {
    const char *isa;            /* "avx512", "avx2", "baseline", "neon", "wide" */
    int registers;              /* vector registers */
    int max_panel_vectors;      /* vectors per GEMM panel at most */
    ptrdiff_t lanes;            /* lanes of this dtype's vectors */
    ptrdiff_t itemsize;         /* bytes of an element: 4 (float32) or 8 (float64) */

    /* channels_last: whether the mixer is gamma itself at C channels (no mixer made).
     * Else the mixer's elements, and the mixer made from gamma into m: channels_last,
     * gamma packed in GEMM panels; channels_first, gamma transposed. */
    int (*mixer_shared)(ptrdiff_t C);
    ptrdiff_t (*mixer_size)(ptrdiff_t C, int channels_last);
    void (*make_mixer)(const void *gamma, ptrdiff_t C, int channels_last, void *m);
    /* sets t->fused .. t->underflow_risk for t->n_ch channels, beta and gamma */
    void (*plan)(cgdn_tile *t);

    /* One channels_last tile: n_rows pixels of C channels at x into out (may be x).
     * f and pool: scratch of n_rows C + CGDN_TILE_PAD elements each. Returns 1 (and
     * writes nothing) if `check` and a pixel needs the careful path, else 0. */
    int (*tile_last)(const void *x, void *out, const cgdn_tile *t, void *f, void *pool,
                     ptrdiff_t n_rows, const cgdn_settings *s, int check);
    /* One channels_first block: channel i of n_pos positions at x + i row_stride, into
     * out + i out_stride (out may be x). f and pool: scratch of C rows of
     * slab_stride(n_pos) elements each, + CGDN_TILE_PAD. Returns as tile_last. */
    int (*tile_first)(const void *x, void *out, const cgdn_tile *t, void *f, void *pool,
                      ptrdiff_t n_pos, ptrdiff_t row_stride, ptrdiff_t out_stride,
                      const cgdn_settings *s, int check);
    /* Whether a pixel needs the careful path: some beta + pool (n, C values n_stride
     * apart) out of range for the settings s, or an input whose f(x) underflows where
     * t->underflow_risk, while every input (x, x_stride apart) is finite. */
    int (*pixel_bad)(const void *x, ptrdiff_t x_stride, const void *n, ptrdiff_t n_stride,
                     const cgdn_tile *t, const cgdn_settings *s);
    /* c (n_rows, n_cols) = a (n_rows, depth) @ b (depth, n_cols); every row of b readable
     * `lanes` elements past n_cols (see gemm.h). float64 tables only (NULL for float32:
     * the density functions compute in float64) */
    void (*gemm_plain)(const void *a, ptrdiff_t a_rs, const void *b, ptrdiff_t b_rs, void *c,
                       ptrdiff_t c_rs, ptrdiff_t depth, ptrdiff_t n_rows, ptrdiff_t n_cols);
} cgdn_kernels;

/* Elements of padding after each of a tile's two scratch areas: the mixers read and
 * write up to one vector (16 float lanes at most) past a tile's last pixel. */
#define CGDN_TILE_PAD 32

/* A variant: its float32 and float64 tables. */
typedef struct cgdn_variant {
    const cgdn_kernels *f32;
    const cgdn_kernels *f64;
} cgdn_variant;

/* The variants built into this module, best first, ended by {NULL, NULL}
 * (cgdn/simd/registry.c). */
extern const cgdn_variant cgdn_variants[];

#endif /* CGDN_TABLE_H */
