/* The parameter check of the core's fast path (cgdn/_core.pyx): whether every value of a
 * float32 or float64 array is finite and >= 0, in one pass without branches, on the bit
 * patterns (integer operations that compilers vectorize with the baseline instruction
 * set; floating-point comparisons of NaN they would not). Returns 0 if every value is
 * finite and >= 0 (-0.0 included), 1 if one is NaN or infinite, 2 if one is negative
 * (and all are finite); with 0, the largest value goes to *largest. */
#ifndef CGDN_STATUS_H
#define CGDN_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static int cgdn_status_f32(const float *values, ptrdiff_t n, double *largest) {
    uint32_t not_finite = 0, negative = 0, top = 0, bits;
    ptrdiff_t k;
    float value;
    for (k = 0; k < n; k++) {
        memcpy(&bits, values + k, sizeof bits);
        not_finite |= (bits & 0x7F800000u) == 0x7F800000u;
        negative |= bits > 0x80000000u;               /* sign set, not -0.0 */
        bits &= 0x7FFFFFFFu;                          /* -0.0 as 0.0 */
        top = bits > top ? bits : top;                /* ordered as the values */
    }
    if (not_finite) return 1;
    if (negative) return 2;
    memcpy(&value, &top, sizeof value);
    *largest = value;
    return 0;
}

static int cgdn_status_f64(const double *values, ptrdiff_t n, double *largest) {
    uint64_t not_finite = 0, negative = 0, top = 0, bits;
    ptrdiff_t k;
    double value;
    for (k = 0; k < n; k++) {
        memcpy(&bits, values + k, sizeof bits);
        not_finite |= (bits & 0x7FF0000000000000ull) == 0x7FF0000000000000ull;
        negative |= bits > 0x8000000000000000ull;
        bits &= 0x7FFFFFFFFFFFFFFFull;
        top = bits > top ? bits : top;
    }
    if (not_finite) return 1;
    if (negative) return 2;
    memcpy(&value, &top, sizeof value);
    *largest = value;
    return 0;
}

#endif /* CGDN_STATUS_H */
