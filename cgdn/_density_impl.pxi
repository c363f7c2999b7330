# GDN as a density model: the exact inverse, the log-determinant of the Jacobian and the
# vector-Jacobian product, per position over a (positions, C) matrix (channels_last; the
# Python side, cgdn._density, brings channels_first inputs to that layout). Included by
# _core.pyx: compiled once; the products of density_vjp run on a variant's GEMM.
#
# Notation per position: r = x (or max(x, 0) with rectify), f_k = |r_k|^alpha,
# n_i = beta_i + sum_j gamma[j, i] f_k, s_i = n_i^(-eps) (GDN) or n_i^(+eps) (IGDN),
# y_i = r_i s_i. The Jacobian is J[i, k] = delta_ik s_i + c_i gamma[k, i] f'(r_k) with
# c_i = -+eps r_i s_i / n_i (times 1[x_k > 0] with rectify).
#
# Per-position arithmetic runs in float64 for both dtypes (C x C factorizations in float32
# would lose the accuracy the density model needs); parameter-gradient sums are float64
# too. Work is split in fixed blocks of positions whose partial sums are added in block
# order, so results never depend on the thread count.

from libc.math cimport log, sqrt, isfinite, INFINITY, NAN
from libc.stdlib cimport free, malloc


cdef inline double _f_and_df(double r, double alpha, double* df) noexcept nogil:
    # f(r) = |r|^alpha and f'(r); f'(0) is taken as 0 (the subgradient for alpha = 1)
    cdef double a = fabs(r)
    if alpha == 2.0:
        df[0] = 2.0 * r
        return r * r
    if alpha == 1.0:
        df[0] = 1.0 if r > 0 else (-1.0 if r < 0 else 0.0)
        return a
    if a == 0:
        df[0] = 0.0
        return 0.0
    df[0] = alpha * pow(a, alpha - 1.0) * (1.0 if r > 0 else -1.0)
    return pow(a, alpha)


cdef inline double _scale(double n, double epsilon, bint inverse) noexcept nogil:
    # s = n^(-eps) (GDN) or n^(+eps) (IGDN)
    if epsilon == 0.5:
        return sqrt(n) if inverse else 1.0 / sqrt(n)
    if epsilon == 1.0:
        return n if inverse else 1.0 / n
    return pow(n, epsilon if inverse else -epsilon)


cdef void _pools(const double* r, const double* beta, const double* gamma, Py_ssize_t C,
                 double alpha, double* f, double* df, double* n) noexcept nogil:
    # f, f' of r and the pools n (C each)
    cdef Py_ssize_t i, j
    for j in range(C):
        f[j] = _f_and_df(r[j], alpha, &df[j])
    for i in range(C):
        n[i] = beta[i]
    for j in range(C):
        if f[j] != 0:
            for i in range(C):
                n[i] += gamma[j * C + i] * f[j]


cdef double _lu_logabsdet(double* a, Py_ssize_t C) noexcept nogil:
    # log |det a| of a row-major C x C matrix, by LU with partial pivoting, in place;
    # -inf for a singular matrix, NaN if a holds NaN
    cdef Py_ssize_t i, j, k, p
    cdef double best, t, piv, result = 0.0
    for k in range(C):
        p = k
        best = fabs(a[k * C + k])
        for i in range(k + 1, C):
            t = fabs(a[i * C + k])
            if t > best:
                best, p = t, i
        if not (best > 0):
            return -INFINITY if best == 0 else NAN
        if p != k:
            for j in range(C):
                a[k * C + j], a[p * C + j] = a[p * C + j], a[k * C + j]
        piv = a[k * C + k]
        result += log(fabs(piv))
        for i in range(k + 1, C):
            t = a[i * C + k] / piv
            if t != 0:
                for j in range(k + 1, C):
                    a[i * C + j] -= t * a[k * C + j]
    return result


cdef bint _lu_solve(double* a, double* b, Py_ssize_t C) noexcept nogil:
    # solve a z = b in place (b becomes z) by Gaussian elimination with partial pivoting;
    # False if a is singular or not finite
    cdef Py_ssize_t i, j, k, p
    cdef double best, t, piv
    for k in range(C):
        p = k
        best = fabs(a[k * C + k])
        for i in range(k + 1, C):
            t = fabs(a[i * C + k])
            if t > best:
                best, p = t, i
        if not (best > 0) or not isfinite(best):
            return False
        if p != k:
            for j in range(C):
                a[k * C + j], a[p * C + j] = a[p * C + j], a[k * C + j]
            b[k], b[p] = b[p], b[k]
        piv = a[k * C + k]
        for i in range(k + 1, C):
            t = a[i * C + k] / piv
            if t != 0:
                for j in range(k + 1, C):
                    a[i * C + j] -= t * a[k * C + j]
                b[i] -= t * b[k]
    for k in range(C - 1, -1, -1):
        t = b[k]
        for j in range(k + 1, C):
            t -= a[k * C + j] * b[j]
        b[k] = t / a[k * C + k]
    return True


cdef void _jacobian(const double* r, const double* df, const double* n, const double* s,
                    const double* gamma, Py_ssize_t C, double epsilon, bint inverse,
                    double* jac) noexcept nogil:
    # J[i, k] = delta_ik s_i + c_i gamma[k, i] f'(r_k), c_i = -+eps r_i s_i / n_i
    cdef Py_ssize_t i, k
    cdef double c
    for i in range(C):
        c = (epsilon if inverse else -epsilon) * r[i] * s[i] / n[i]
        for k in range(C):
            jac[i * C + k] = c * gamma[k * C + i] * df[k]
        jac[i * C + i] += s[i]


cdef inline double _rect(double v, bint rectify) noexcept nogil:
    return 0.0 if (rectify and v < 0) else v


def density_logdet(const floating[:, ::1] x, const double[::1] beta,
                   const double[:, ::1] gamma, double[::1] out, double alpha,
                   double epsilon, bint inverse, bint rectify, int num_threads):
    """log |det dy/dx| per row of x (P, C) into out (P,)."""
    cdef Py_ssize_t P = x.shape[0], C = x.shape[1], p, k
    cdef double* work
    cdef double* r
    cdef double* f
    cdef double* df
    cdef double* n
    cdef double* s
    cdef double* jac
    cdef bint dead
    if out.shape[0] != P or beta.shape[0] != C or gamma.shape[0] != C or gamma.shape[1] != C:
        raise ValueError("shapes do not match")
    if P == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        work = <double*> malloc((5 * C + C * C) * sizeof(double))
        r, f, df, n, s, jac = work, work + C, work + 2 * C, work + 3 * C, work + 4 * C, work + 5 * C
        for p in prange(P, schedule="static"):
            dead = False
            for k in range(C):
                r[k] = _rect(x[p, k], rectify)
                dead = dead or (rectify and not (x[p, k] > 0) and x[p, k] == x[p, k])
            if dead:   # a rectified input: its column of the Jacobian is zero
                out[p] = -INFINITY
            else:
                _pools(r, &beta[0], &gamma[0, 0], C, alpha, f, df, n)
                for k in range(C):
                    s[k] = _scale(n[k], epsilon, inverse)
                _jacobian(r, df, n, s, &gamma[0, 0], C, epsilon, inverse, jac)
                out[p] = _lu_logabsdet(jac, C)
        free(work)


cdef enum:
    _VJP_TILE = 64        # positions per GEMM tile inside a block
    _VJP_PAD = 16         # elements past each buffer: whole-vector reads of the last row


def density_vjp(Variant variant, const floating[:, ::1] x, const double[::1] beta,
                const double[:, ::1] gamma,
                const floating[:, ::1] grad_y, floating[:, ::1] grad_x,
                double[:, ::1] grad_beta, double[:, :, ::1] grad_gamma,
                Py_ssize_t block, double alpha, double epsilon, bint inverse, bint rectify,
                int num_threads):
    """grad_x (P, C), and per block of ``block`` rows the partial sums grad_beta[b] (C,)
    and grad_gamma[b] (C, C) (added by the caller in block order).

    Per tile of positions, three products run as ``variant``'s register-blocked GEMMs
    (float64): the pools N = F @ gamma, the parameter gradient F^T @ U and the
    back-projection U @ gamma^T; the rest is elementwise."""
    cdef Py_ssize_t P = x.shape[0], C = x.shape[1], n_parts, b, t0, t, p, i, j, k, z, stop
    cdef Py_ssize_t T = _VJP_TILE
    cdef double* work
    cdef double* f
    cdef double* ft
    cdef double* df
    cdef double* pool
    cdef double* s
    cdef double* u
    cdef double* q
    cdef double* tmp
    cdef double* acc_beta
    cdef double* acc_gamma
    cdef double r, coef
    cdef double[:, ::1] g_pad, gt_pad
    cdef const cgdn_kernels* kern = variant.v.f64
    n_parts = (P + block - 1) // block if P else 0
    if (grad_beta.shape[0] < n_parts or grad_gamma.shape[0] < n_parts
            or grad_x.shape[0] != P or grad_y.shape[0] != P or block < 1):
        raise ValueError("shapes do not match")
    if P == 0:
        return
    # gamma and gamma^T with a row of padding (whole-vector reads of the last row)
    g_pad = np.zeros((C + 1, C + _VJP_PAD))
    gt_pad = np.zeros((C + 1, C + _VJP_PAD))
    for j in range(C):
        for i in range(C):
            g_pad[j, i] = gamma[j, i]
            gt_pad[i, j] = gamma[j, i]
    with nogil, parallel(num_threads=num_threads):
        work = <double*> malloc((7 * (T * C + _VJP_PAD) + 2 * (C * C + _VJP_PAD) + C)
                                * sizeof(double))
        f = work
        ft = f + T * C + _VJP_PAD
        df = ft + T * C + _VJP_PAD
        pool = df + T * C + _VJP_PAD
        s = pool + T * C + _VJP_PAD
        u = s + T * C + _VJP_PAD
        q = u + T * C + _VJP_PAD
        tmp = q + T * C + _VJP_PAD
        acc_gamma = tmp + C * C + _VJP_PAD
        acc_beta = acc_gamma + C * C + _VJP_PAD
        for z in range(T * C + _VJP_PAD):
            u[z] = 0
            f[z] = 0
        for b in prange(n_parts, schedule="static"):
            for k in range(C * C):
                acc_gamma[k] = 0
            for k in range(C):
                acc_beta[k] = 0
            stop = min(P, (b + 1) * block)
            t0 = b * block
            while t0 < stop:
                t = min(T, stop - t0)
                for p in range(t):
                    for k in range(C):
                        r = _rect(x[t0 + p, k], rectify)
                        f[p * C + k] = _f_and_df(r, alpha, &df[p * C + k])
                        ft[k * t + p] = f[p * C + k]
                # pools: beta + F @ gamma
                kern.gemm_plain(f, C, &g_pad[0, 0], C + _VJP_PAD, pool, C, C, t, C)
                for p in range(t):
                    for i in range(C):
                        r = _rect(x[t0 + p, i], rectify)
                        pool[p * C + i] += beta[i]
                        s[p * C + i] = _scale(pool[p * C + i], epsilon, inverse)
                        coef = (epsilon if inverse else -epsilon) * r * s[p * C + i] / pool[p * C + i]
                        u[p * C + i] = coef * grad_y[t0 + p, i]
                        acc_beta[i] += u[p * C + i]
                # dL/dgamma += F^T @ U
                kern.gemm_plain(ft, t, u, C, tmp, C, t, C, C)
                for k in range(C * C):
                    acc_gamma[k] += tmp[k]
                # dL/dx = g s + f'(x) (U @ gamma^T)
                kern.gemm_plain(u, C, &gt_pad[0, 0], C + _VJP_PAD, q, C, C, t, C)
                for p in range(t):
                    for k in range(C):
                        r = grad_y[t0 + p, k] * s[p * C + k] + df[p * C + k] * q[p * C + k]
                        if rectify and not (x[t0 + p, k] > 0) and x[t0 + p, k] == x[t0 + p, k]:
                            r = 0.0
                        grad_x[t0 + p, k] = <floating> r
                t0 = t0 + t
            for i in range(C):
                grad_beta[b, i] = acc_beta[i]
                for j in range(C):
                    grad_gamma[b, j, i] = acc_gamma[j * C + i]
        free(work)


def density_inverse(const floating[:, ::1] y, const double[::1] beta,
                    const double[:, ::1] gamma, floating[:, ::1] out, int[::1] steps,
                    double alpha, double epsilon, double tol, int max_iter, int num_threads):
    """x with GDN(x) = y per row (P, C), by Newton's method from the one-step IGDN start,
    with step halving when the residual grows. steps[p] is the number of Newton steps
    row p took, or -1 (and NaN in out) if it did not converge within ``max_iter``."""
    cdef Py_ssize_t P = y.shape[0], C = y.shape[1], p, k
    cdef double* work
    cdef double* xk
    cdef double* f
    cdef double* df
    cdef double* n
    cdef double* s
    cdef double* res
    cdef double* step
    cdef double* trial
    cdef double* jac
    cdef double norm, trial_norm, scale, ymax, t
    cdef int it, halvings
    cdef bint done
    if out.shape[0] != P or steps.shape[0] != P:
        raise ValueError("shapes do not match")
    if P == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        work = <double*> malloc((8 * C + C * C) * sizeof(double))
        xk, f, df, n = work, work + C, work + 2 * C, work + 3 * C
        s, res, step, trial = work + 4 * C, work + 5 * C, work + 6 * C, work + 7 * C
        jac = work + 8 * C
        for p in prange(P, schedule="static"):
            ymax = 0.0
            for k in range(C):
                ymax = max(ymax, fabs(y[p, k]))
                xk[k] = y[p, k]
            # start: one fixed-point step, x = y * n(y)^eps (IGDN of y)
            _pools(xk, &beta[0], &gamma[0, 0], C, alpha, f, df, n)
            for k in range(C):
                xk[k] = y[p, k] * _scale(n[k], epsilon, True)
            done = False
            it = 0
            while it < max_iter and not done:
                it = it + 1
                _pools(xk, &beta[0], &gamma[0, 0], C, alpha, f, df, n)
                norm = 0.0
                for k in range(C):
                    s[k] = _scale(n[k], epsilon, False)
                    res[k] = xk[k] * s[k] - y[p, k]
                    step[k] = res[k]
                    norm = max(norm, fabs(res[k]))
                if not isfinite(norm):
                    break
                if norm <= tol * (ymax if ymax > 0 else 1.0):
                    done = True
                    break
                _jacobian(xk, df, n, s, &gamma[0, 0], C, epsilon, False, jac)
                if not _lu_solve(jac, step, C):
                    break
                scale = 1.0
                halvings = 0
                while True:   # backtrack while the residual grows
                    for k in range(C):
                        trial[k] = xk[k] - scale * step[k]
                    _pools(trial, &beta[0], &gamma[0, 0], C, alpha, f, df, n)
                    trial_norm = 0.0
                    for k in range(C):
                        t = trial[k] * _scale(n[k], epsilon, False) - y[p, k]
                        trial_norm = max(trial_norm, fabs(t))
                    if (trial_norm < norm) or halvings >= 30:
                        break
                    scale = scale * 0.5
                    halvings = halvings + 1
                if not (trial_norm < norm):
                    break
                for k in range(C):
                    xk[k] = trial[k]
            if done:
                steps[p] = it - 1    # the last pass only confirmed convergence
                for k in range(C):
                    out[p, k] = <floating> xk[k]
            else:
                steps[p] = -1
                for k in range(C):
                    out[p, k] = <floating> NAN
        free(work)
