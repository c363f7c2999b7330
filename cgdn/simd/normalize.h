/* Kernel family: the normalization out = x / n^eps or x * n^eps for eps = 1/2 and 1
 * over a contiguous run (kernels.h includes it once per dtype). x is rectified first
 * when asked (x < 0 -> 0; NaN kept). out may be x.
 *
 * Every n is a positive normal finite number (the callers check the range first and
 * send other pixels to the careful path), so reciprocal estimates never meet 0, inf,
 * NaN or subnormals. With EST_STEPS > 0 the reciprocal (square root) comes from the
 * ISA's estimate and EST_STEPS Newton steps (relative error below 4e-7 in float32);
 * otherwise from an exact square root and division. */

CGDN_INLINE vec normalize_one(vec v, vec nv, const int mode) {
#if EST_STEPS > 0
    vec r;
    int s;
    if (mode == CGDN_GDN_SQRT || mode == CGDN_IGDN_SQRT) {
        const vec half = v_set1((real)0.5), three_halves = v_set1((real)1.5);
        const vec half_n = v_mul(half, nv);
        r = v_rsqrt_est(nv);                                 /* r ~ n^-1/2 */
        for (s = 0; s < EST_STEPS; s++)                      /* r (3/2 - n r^2 / 2) */
            r = v_mul(r, v_fnma(half_n, v_mul(r, r), three_halves));
        if (mode == CGDN_IGDN_SQRT) r = v_mul(nv, r);       /* n^1/2 = n n^-1/2 */
        return v_mul(v, r);
    }
    if (mode == CGDN_GDN_ONE) {
        const vec two = v_set1((real)2);
        r = v_rcp_est(nv);                                   /* r ~ 1/n */
        for (s = 0; s < EST_STEPS; s++) r = v_mul(r, v_fnma(nv, r, two));   /* r (2 - n r) */
        return v_mul(v, r);
    }
#else
    if (mode == CGDN_GDN_SQRT) return v_div(v, v_sqrt(nv));
    if (mode == CGDN_IGDN_SQRT) return v_mul(v, v_sqrt(nv));
    if (mode == CGDN_GDN_ONE) return v_div(v, nv);
#endif
    return v_mul(v, nv);                                     /* CGDN_IGDN_ONE */
}

CGDN_INLINE void normalize_loop(const real *x, const real *n, real *out, ptrdiff_t count,
                                int rectify, const int mode) {
    ptrdiff_t k = 0;
    for (; k + LANES <= count; k += LANES) {
        vec v = v_load(x + k);
        if (rectify) v = v_rectify(v);
        v_store(out + k, normalize_one(v, v_load(n + k), mode));
    }
    if (k < count) {   /* padding lanes: x = 0, n = 1, never stored */
        vec v = v_load_tail(x + k, count - k, (real)0);
        if (rectify) v = v_rectify(v);
        v_store_tail(out + k, count - k, normalize_one(v, v_load_tail(n + k, count - k, (real)1), mode));
    }
}

/* x (count), n (count) -> out (count); mode is one of CGDN_GDN_SQRT ... CGDN_IGDN_ONE. */
static void normalize(const real *x, const real *n, real *out, ptrdiff_t count, int mode,
                      int rectify) {
    switch (mode) {
    case CGDN_GDN_SQRT: normalize_loop(x, n, out, count, rectify, CGDN_GDN_SQRT); break;
    case CGDN_IGDN_SQRT: normalize_loop(x, n, out, count, rectify, CGDN_IGDN_SQRT); break;
    case CGDN_GDN_ONE: normalize_loop(x, n, out, count, rectify, CGDN_GDN_ONE); break;
    default: normalize_loop(x, n, out, count, rectify, CGDN_IGDN_ONE); break;
    }
}
