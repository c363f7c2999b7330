/* Kernel family: the range check (kernels.h includes it once per dtype). Whether any of
 * n[0 .. count) is not a positive, normal, finite number (0, subnormal, negative, inf or
 * NaN). On the bit patterns this is one unsigned comparison per element, a loop every
 * compiler vectorizes without intrinsics. */
static int any_out_of_range(const real *n, ptrdiff_t count) {
    real_bits bad = 0, bits;
    ptrdiff_t k;
    for (k = 0; k < count; k++) {
        memcpy(&bits, n + k, sizeof bits);
        bad |= (real_bits)(bits - REAL_BITS_MIN) > (real_bits)(REAL_BITS_MAX - REAL_BITS_MIN);
    }
    return bad != 0;
}
