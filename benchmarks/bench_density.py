"""Positions per second of cgdn's density functions against plain NumPy (and PyTorch
autograd for the VJP, when installed).

For each C: gdn_inverse, gdn_logdet and gdn_vjp of a (P, C) float64 matrix, 1 and 2
threads. NumPy: the same math vectorized over positions (Jacobians batched into
np.linalg.slogdet; Newton steps batched into np.linalg.solve; the VJP formula), with its
BLAS limited to the same thread count. Medians of interleaved rounds, in one process.

Run (with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset):
    python benchmarks/bench_density.py [--channels 3 16 64 192] [--threads 1 2] [--rounds 5]
"""
import argparse
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

import cgdn

POSITIONS = {3: 65536, 16: 16384, 64: 4096, 192: 1024}
# BLAS and PyTorch worker threads keep spinning for a while after a call and would take a
# core from cgdn's threads: pause after each of their blocks
PAUSE = 0.3


def numpy_pools(x, beta, gamma):
    f = x * x
    return f, beta + f @ gamma


def numpy_logdet(x, beta, gamma):
    _, n = numpy_pools(x, beta, gamma)
    s = n ** -0.5
    c = -0.5 * x * s / n
    jac = c[:, :, None] * gamma.T[None] * (2 * x)[:, None, :]
    idx = np.arange(x.shape[1])
    jac[:, idx, idx] += s
    return np.linalg.slogdet(jac)[1]


def numpy_vjp(x, beta, gamma, g):
    f, n = numpy_pools(x, beta, gamma)
    s = n ** -0.5
    u = -0.5 * x * s / n * g
    gx = g * s + 2 * x * (u @ gamma.T)
    return gx, u.sum(0), f.T @ u


def numpy_inverse(y, beta, gamma, tol=1e-13, max_iter=50):
    x = y * np.sqrt(numpy_pools(y, beta, gamma)[1])
    idx = np.arange(y.shape[1])
    for _ in range(max_iter):
        _, n = numpy_pools(x, beta, gamma)
        s = n ** -0.5
        res = x * s - y
        if np.abs(res).max() <= tol * np.abs(y).max():
            break
        jac = (-0.5 * x * s / n)[:, :, None] * gamma.T[None] * (2 * x)[:, None, :]
        jac[:, idx, idx] += s
        x = x - np.linalg.solve(jac, res[..., None])[..., 0]
    return x


def torch_vjp_factory(torch):
    def run(x, beta, gamma, g):
        xt = torch.from_numpy(x).requires_grad_(True)
        bt = torch.from_numpy(beta).requires_grad_(True)
        gt = torch.from_numpy(gamma).requires_grad_(True)
        y = xt * torch.rsqrt(bt + (xt * xt) @ gt)
        y.backward(torch.from_numpy(g))
        return xt.grad, bt.grad, gt.grad
    return run


def median_time(fn, rounds):
    times = []
    for _ in range(rounds):
        fn()                       # warm-up inside each block (OpenMP workers park)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[3, 16, 64, 192])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
        torch_vjp = torch_vjp_factory(torch)
    except ImportError:
        torch = torch_vjp = None
    print(f"cgdn {cgdn.__version__}, float64, {platform.processor() or platform.machine()}, "
          f"kernels {cgdn.show_config('dicts')['isa']}; median of {args.rounds} rounds; "
          f"positions per second (millions), and cgdn / other")
    print("\n| C | P | threads | function | cgdn | numpy | cgdn/numpy | torch | cgdn/torch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for c in args.channels:
        p = POSITIONS.get(c, max(256, (1 << 22) // (c * c)))
        beta = rng.uniform(0.5, 1.5, c)
        gamma = rng.uniform(0, 0.5 / c, (c, c)) + np.diag(rng.uniform(0.05, 0.3, c))
        x = rng.standard_normal((p, c))
        g = rng.standard_normal((p, c))
        y = cgdn.apply_gdn(x, beta, gamma)
        for t in args.threads:
            cases = {
                "gdn_inverse": (lambda: cgdn.gdn_inverse(y, beta, gamma, num_threads=t),
                                lambda: numpy_inverse(y, beta, gamma), None),
                "gdn_logdet": (lambda: cgdn.gdn_logdet(x, beta, gamma, num_threads=t),
                               lambda: numpy_logdet(x, beta, gamma), None),
                "gdn_vjp": (lambda: cgdn.gdn_vjp(x, beta, gamma, g, num_threads=t),
                            lambda: numpy_vjp(x, beta, gamma, g),
                            (lambda: torch_vjp(x, beta, gamma, g)) if torch_vjp else None),
            }
            if torch is not None:
                torch.set_num_threads(t)
            for name, (ours, numpy_fn, torch_fn) in cases.items():
                with threadpool_limits(limits=t, user_api="blas"):
                    t_np = median_time(numpy_fn, args.rounds)
                time.sleep(PAUSE)
                t_c = median_time(ours, args.rounds)
                t_t = median_time(torch_fn, args.rounds) if torch_fn else None
                time.sleep(PAUSE)
                rate = lambda s: p / s / 1e6  # noqa: E731
                torch_cols = (f"{rate(t_t):.3f} | {t_t / t_c:.2f}" if t_t else "- | -")
                print(f"| {c} | {p} | {t} | {name} | {rate(t_c):.3f} | {rate(t_np):.3f} | "
                      f"{t_np / t_c:.2f} | {torch_cols} |")


if __name__ == "__main__":
    main()
