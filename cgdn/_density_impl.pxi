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
from libc.stdlib cimport calloc, free, malloc


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


cdef inline void _store(char* p, Py_ssize_t itemsize, double v) noexcept nogil:
    if itemsize == 4:
        (<float*> p)[0] = <float> v
    else:
        (<double*> p)[0] = v


cdef inline Py_ssize_t _rows_per_item(Py_ssize_t C) noexcept nogil:
    # positions per work item of the per-position functions: about 20k flops each (the
    # C x C factorization dominates), so that handing items out costs nothing
    cdef Py_ssize_t cost = C * C * C // 3 + C * C + 16
    return max(1, min(1024, 20000 // cost))


cdef struct RowRun:
    # what the items of logdet and inverse share; rows (P, C) of itemsize bytes each
    const char* x
    char* out                 # inverse: (P, C) of x's itemsize; logdet: (P,) doubles
    int* steps                # inverse: Newton steps per row
    Py_ssize_t itemsize
    Py_ssize_t P
    Py_ssize_t C
    Py_ssize_t rows           # rows per item
    const double* beta
    const double* gamma
    double alpha
    double epsilon
    double tol
    int max_iter
    bint inverse
    bint rectify
    double* work              # slot k's at work + k * each
    Py_ssize_t each


cdef void _logdet_item(void* ctx, Py_ssize_t item, int slot) noexcept nogil:
    cdef RowRun* d = <RowRun*> ctx
    cdef Py_ssize_t C = d.C, p, k
    cdef double* r = d.work + slot * d.each
    cdef double* f = r + C
    cdef double* df = r + 2 * C
    cdef double* n = r + 3 * C
    cdef double* s = r + 4 * C
    cdef double* jac = r + 5 * C
    cdef double v
    cdef bint dead
    for p in range(item * d.rows, min(d.P, (item + 1) * d.rows)):
        dead = False
        for k in range(C):
            v = _load(d.x + (p * C + k) * d.itemsize, d.itemsize)
            r[k] = _rect(v, d.rectify)
            dead = dead or (d.rectify and not (v > 0) and v == v)
        if dead:   # a rectified input: its column of the Jacobian is zero
            (<double*> d.out)[p] = -INFINITY
        else:
            _pools(r, d.beta, d.gamma, C, d.alpha, f, df, n)
            for k in range(C):
                s[k] = _scale(n[k], d.epsilon, d.inverse)
            _jacobian(r, df, n, s, d.gamma, C, d.epsilon, d.inverse, jac)
            (<double*> d.out)[p] = _lu_logabsdet(jac, C)


cdef int _run_rows(cgdn_item_fn fn, RowRun* d, Py_ssize_t each, int num_threads) except -1:
    # every item of d's rows through fn, with each slot's `each` doubles of work
    cdef Py_ssize_t n_items = (d.P + d.rows - 1) // d.rows
    cdef void* block
    num_threads = <int> max(1, min(num_threads, n_items))
    d.each = _whole_lines(each * sizeof(double)) // sizeof(double)   # lines of its own
    block = malloc(num_threads * d.each * sizeof(double) + _LINE)
    if block == NULL:
        raise MemoryError()
    d.work = <double*> _line_start(block)
    try:
        with nogil:
            cgdn_pool_run(fn, d, n_items, num_threads)
    finally:
        free(block)
    return 0


def density_logdet(const floating[:, ::1] x, const double[::1] beta,
                   const double[:, ::1] gamma, double[::1] out, double alpha,
                   double epsilon, bint inverse, bint rectify, int num_threads):
    """log |det dy/dx| per row of x (P, C) into out (P,)."""
    cdef Py_ssize_t P = x.shape[0], C = x.shape[1]
    cdef RowRun d
    if out.shape[0] != P or beta.shape[0] != C or gamma.shape[0] != C or gamma.shape[1] != C:
        raise ValueError("shapes do not match")
    if P == 0:
        return
    d.x, d.out, d.itemsize, d.P, d.C = <const char*> &x[0, 0], <char*> &out[0], sizeof(floating), P, C
    d.rows, d.beta, d.gamma = _rows_per_item(C), &beta[0], &gamma[0, 0]
    d.alpha, d.epsilon, d.inverse, d.rectify = alpha, epsilon, inverse, rectify
    _run_rows(_logdet_item, &d, 5 * C + C * C, num_threads)


cdef enum:
    _VJP_TILE = 64        # positions per GEMM tile inside a block
    _VJP_PAD = 16         # elements past each buffer: whole-vector reads of the last row


cdef struct VjpRun:
    const cgdn_kernels* kern
    const char* x
    const char* grad_y
    char* grad_x
    double* grad_beta         # (parts, C)
    double* grad_gamma        # (parts, C, C)
    Py_ssize_t itemsize
    Py_ssize_t P
    Py_ssize_t C
    Py_ssize_t block
    const double* beta
    const double* g_pad       # gamma, rows C + _VJP_PAD apart, and a row of zeros
    const double* gt_pad      # gamma^T, likewise
    double alpha
    double epsilon
    bint inverse
    bint rectify
    double* work              # slot k's at work + k * each (zeroed once)
    Py_ssize_t each


cdef void _vjp_item(void* ctx, Py_ssize_t b, int slot) noexcept nogil:
    # block b of rows: grad_x, and its partial sums of the parameter gradients
    cdef VjpRun* d = <VjpRun*> ctx
    cdef Py_ssize_t C = d.C, T = _VJP_TILE, sz = d.itemsize, t0, t, p, i, j, k, stop
    cdef double* f = d.work + slot * d.each
    cdef double* ft = f + T * C + _VJP_PAD
    cdef double* df = ft + T * C + _VJP_PAD
    cdef double* pool = df + T * C + _VJP_PAD
    cdef double* s = pool + T * C + _VJP_PAD
    cdef double* u = s + T * C + _VJP_PAD
    cdef double* q = u + T * C + _VJP_PAD
    cdef double* tmp = q + T * C + _VJP_PAD
    cdef double* acc_gamma = tmp + C * C + _VJP_PAD
    cdef double* acc_beta = acc_gamma + C * C + _VJP_PAD
    cdef double r, coef, xv
    for k in range(C * C):
        acc_gamma[k] = 0
    for k in range(C):
        acc_beta[k] = 0
    stop = min(d.P, (b + 1) * d.block)
    t0 = b * d.block
    while t0 < stop:
        t = min(T, stop - t0)
        for p in range(t):
            for k in range(C):
                r = _rect(_load(d.x + ((t0 + p) * C + k) * sz, sz), d.rectify)
                f[p * C + k] = _f_and_df(r, d.alpha, &df[p * C + k])
                ft[k * t + p] = f[p * C + k]
        # pools: beta + F @ gamma
        d.kern.gemm_plain(f, C, d.g_pad, C + _VJP_PAD, pool, C, C, t, C)
        for p in range(t):
            for i in range(C):
                r = _rect(_load(d.x + ((t0 + p) * C + i) * sz, sz), d.rectify)
                pool[p * C + i] += d.beta[i]
                s[p * C + i] = _scale(pool[p * C + i], d.epsilon, d.inverse)
                coef = (d.epsilon if d.inverse else -d.epsilon) * r * s[p * C + i] / pool[p * C + i]
                u[p * C + i] = coef * _load(d.grad_y + ((t0 + p) * C + i) * sz, sz)
                acc_beta[i] += u[p * C + i]
        # dL/dgamma += F^T @ U
        d.kern.gemm_plain(ft, t, u, C, tmp, C, t, C, C)
        for k in range(C * C):
            acc_gamma[k] += tmp[k]
        # dL/dx = g s + f'(x) (U @ gamma^T)
        d.kern.gemm_plain(u, C, d.gt_pad, C + _VJP_PAD, q, C, C, t, C)
        for p in range(t):
            for k in range(C):
                r = (_load(d.grad_y + ((t0 + p) * C + k) * sz, sz) * s[p * C + k]
                     + df[p * C + k] * q[p * C + k])
                xv = _load(d.x + ((t0 + p) * C + k) * sz, sz)
                if d.rectify and not (xv > 0) and xv == xv:
                    r = 0.0
                _store(d.grad_x + ((t0 + p) * C + k) * sz, sz, r)
        t0 = t0 + t
    for i in range(C):
        d.grad_beta[b * C + i] = acc_beta[i]
        for j in range(C):
            d.grad_gamma[(b * C + j) * C + i] = acc_gamma[j * C + i]


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
    cdef Py_ssize_t P = x.shape[0], C = x.shape[1], n_parts, i, j
    cdef Py_ssize_t T = _VJP_TILE
    cdef double[:, ::1] g_pad, gt_pad
    cdef VjpRun d
    cdef void* memory
    n_parts = (P + block - 1) // block if P else 0
    if (grad_beta.shape[0] < n_parts or grad_gamma.shape[0] < n_parts
            or grad_x.shape[0] != P or grad_y.shape[0] != P or block < 1
            or grad_x.shape[1] != C or grad_y.shape[1] != C or beta.shape[0] != C
            or gamma.shape[0] != C or gamma.shape[1] != C or grad_beta.shape[1] != C
            or grad_gamma.shape[1] != C or grad_gamma.shape[2] != C):
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
    d.kern = variant.v.f64
    d.x, d.grad_y, d.grad_x = <const char*> &x[0, 0], <const char*> &grad_y[0, 0], <char*> &grad_x[0, 0]
    d.grad_beta, d.grad_gamma = &grad_beta[0, 0], &grad_gamma[0, 0, 0]
    d.itemsize, d.P, d.C, d.block = sizeof(floating), P, C, block
    d.beta, d.g_pad, d.gt_pad = &beta[0], &g_pad[0, 0], &gt_pad[0, 0]
    d.alpha, d.epsilon, d.inverse, d.rectify = alpha, epsilon, inverse, rectify
    num_threads = <int> max(1, min(num_threads, n_parts))
    d.each = _whole_lines((7 * (T * C + _VJP_PAD) + 2 * (C * C + _VJP_PAD) + C)
                          * sizeof(double)) // sizeof(double)      # lines of its own
    memory = calloc(num_threads * d.each * sizeof(double) + _LINE, 1)   # padding reads: zeros
    if memory == NULL:
        raise MemoryError()
    d.work = <double*> _line_start(memory)
    try:
        with nogil:
            cgdn_pool_run(_vjp_item, &d, n_parts, num_threads)
    finally:
        free(memory)


cdef void _inverse_item(void* ctx, Py_ssize_t item, int slot) noexcept nogil:
    cdef RowRun* d = <RowRun*> ctx
    cdef Py_ssize_t C = d.C, sz = d.itemsize, p, k
    cdef double* xk = d.work + slot * d.each
    cdef double* f = xk + C
    cdef double* df = xk + 2 * C
    cdef double* n = xk + 3 * C
    cdef double* s = xk + 4 * C
    cdef double* res = xk + 5 * C
    cdef double* step = xk + 6 * C
    cdef double* trial = xk + 7 * C
    cdef double* y = xk + 8 * C
    cdef double* jac = xk + 9 * C
    cdef double norm, trial_norm = 0.0, scale, ymax, t
    cdef int it, halvings
    cdef bint done
    for p in range(item * d.rows, min(d.P, (item + 1) * d.rows)):
        ymax = 0.0
        for k in range(C):
            y[k] = _load(d.x + (p * C + k) * sz, sz)
            ymax = max(ymax, fabs(y[k]))
            xk[k] = y[k]
        # start: one fixed-point step, x = y * n(y)^eps (IGDN of y)
        _pools(xk, d.beta, d.gamma, C, d.alpha, f, df, n)
        for k in range(C):
            xk[k] = y[k] * _scale(n[k], d.epsilon, True)
        done = False
        it = 0
        while it < d.max_iter and not done:
            it = it + 1
            _pools(xk, d.beta, d.gamma, C, d.alpha, f, df, n)
            norm = 0.0
            for k in range(C):
                s[k] = _scale(n[k], d.epsilon, False)
                res[k] = xk[k] * s[k] - y[k]
                step[k] = res[k]
                norm = max(norm, fabs(res[k]))
            if not isfinite(norm):
                break
            if norm <= d.tol * (ymax if ymax > 0 else 1.0):
                done = True
                break
            _jacobian(xk, df, n, s, d.gamma, C, d.epsilon, False, jac)
            if not _lu_solve(jac, step, C):
                break
            scale = 1.0
            halvings = 0
            while True:   # backtrack while the residual grows
                for k in range(C):
                    trial[k] = xk[k] - scale * step[k]
                _pools(trial, d.beta, d.gamma, C, d.alpha, f, df, n)
                trial_norm = 0.0
                for k in range(C):
                    t = trial[k] * _scale(n[k], d.epsilon, False) - y[k]
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
            d.steps[p] = it - 1    # the last pass only confirmed convergence
            for k in range(C):
                _store(d.out + (p * C + k) * sz, sz, xk[k])
        else:
            d.steps[p] = -1
            for k in range(C):
                _store(d.out + (p * C + k) * sz, sz, NAN)


def density_inverse(const floating[:, ::1] y, const double[::1] beta,
                    const double[:, ::1] gamma, floating[:, ::1] out, int[::1] steps,
                    double alpha, double epsilon, double tol, int max_iter, int num_threads):
    """x with GDN(x) = y per row (P, C), by Newton's method from the one-step IGDN start,
    with step halving when the residual grows. steps[p] is the number of Newton steps
    row p took, or -1 (and NaN in out) if it did not converge within ``max_iter``."""
    cdef Py_ssize_t P = y.shape[0], C = y.shape[1]
    cdef RowRun d
    if (out.shape[0] != P or out.shape[1] != C or steps.shape[0] != P or beta.shape[0] != C
            or gamma.shape[0] != C or gamma.shape[1] != C):
        raise ValueError("shapes do not match")
    if P == 0:
        return
    d.x, d.out, d.steps = <const char*> &y[0, 0], <char*> &out[0, 0], &steps[0]
    d.itemsize, d.P, d.C, d.rows = sizeof(floating), P, C, _rows_per_item(C)
    d.beta, d.gamma, d.alpha, d.epsilon = &beta[0], &gamma[0, 0], alpha, epsilon
    d.tol, d.max_iter = tol, max_iter
    _run_rows(_inverse_item, &d, 9 * C + C * C, num_threads)
