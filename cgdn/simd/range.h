/* Kernel family: the range check (kernels.h includes it once per dtype). Whether any of
 * n[0 .. count) lies outside [lo, hi], bounds given as the bit patterns of positive
 * numbers (0, subnormals, negatives, inf and NaN lie outside any such range). On the bit
 * patterns this is one unsigned comparison per element, a loop every compiler vectorizes
 * without intrinsics. */
static int any_out_of_range(const real *n, ptrdiff_t count, real_bits lo, real_bits hi) {
    real_bits bad = 0, bits;
    ptrdiff_t k;
    for (k = 0; k < count; k++) {
        memcpy(&bits, n + k, sizeof bits);
        bad |= (real_bits)(bits - lo) > (real_bits)(hi - lo);
    }
    return bad != 0;
}
