"""Fit GDN as a density model: make a Gaussian scale mixture Gaussian.

Data: x = s * z with z ~ N(0, Sigma) (two correlated channels) and one scale s per
sample (log-normal): heavy tails, and the "bow-tie" dependency between the channels
that GDN was designed to remove (Ballé, Laparra, Simoncelli, ICLR 2016).

Model: y = GDN(W x) with y ~ N(0, I), where W whitens x (a fixed linear transform from
the sample covariance, as the linear stage of Ballé et al.'s model; GDN then removes the
dependency that whitening leaves: the joint scale). By the change of variables the
negative log-likelihood per dimension is

    NLL = mean over samples of (|y|^2 / 2 + C/2 log(2 pi) - log |det dy/du| - log |det W|) / C

with u = W x.

The fit uses plain NumPy gradient steps (Adam) on the layer's stored variables:
cgdn.gdn_grads gives the gradient of the Gaussian term through GDN (with TensorFlow's
lower-bound rule for the reparameterized variables); the gradient of the log-determinant
comes from central differences of cgdn.gdn_logdet over the few parameters.

Run: python examples/density_model.py [--steps 300] [--out DIR | --figure PATH]
(the figure goes to a new temporary folder unless --out or --figure says where).
"""
import argparse
import math
import os
import tempfile
import time

import numpy as np

import cgdn


def sample(n, rng):
    sigma = np.array([[1.0, 0.6], [0.6, 1.0]])
    z = rng.standard_normal((n, 2)) @ np.linalg.cholesky(sigma).T
    s = np.exp(0.8 * rng.standard_normal((n, 1)))
    return (s * z).reshape(n, 1, 1, 2)          # (N, H=1, W=1, C=2) for cgdn.gdn


def whitening(x):
    """W with cov(W x) = I (symmetric, ZCA) and log |det W|."""
    cov = np.cov(x.reshape(-1, x.shape[-1]).T)
    vals, vecs = np.linalg.eigh(cov)
    w = vecs @ np.diag(vals ** -0.5) @ vecs.T
    return w, float(-0.5 * np.sum(np.log(vals)))


def nll(x, store, name="g", log_det_w=0.0):
    y = cgdn.gdn(x, name=name, reuse=True, store=store)
    c = x.shape[-1]
    beta = cgdn.params.reparam_value(store[f"{name}/reparam_beta"], 1e-6, 2.0**-18)
    gamma = cgdn.params.reparam_value(store[f"{name}/reparam_gamma"], 0.0, 2.0**-18)
    logdet = cgdn.gdn_logdet(x, beta, gamma)
    value = np.mean(0.5 * np.sum(y**2, axis=-1) + 0.5 * c * math.log(2 * math.pi) - logdet)
    return (value - log_det_w) / c, y


def logdet_gradient(x, store, name="g", h=1e-6):
    """d mean(log det) / d raw variables, by central differences."""
    grads = {}
    for var in (f"{name}/reparam_beta", f"{name}/reparam_gamma"):
        raw = store[var]
        grad = np.zeros_like(raw)
        for idx in np.ndindex(raw.shape):
            values = []
            for sign in (1, -1):
                moved = raw.copy()
                moved[idx] += sign * h
                store[var] = moved
                beta = cgdn.params.reparam_value(store[f"{name}/reparam_beta"], 1e-6, 2.0**-18)
                gamma = cgdn.params.reparam_value(store[f"{name}/reparam_gamma"], 0.0, 2.0**-18)
                values.append(np.mean(cgdn.gdn_logdet(x, beta, gamma)))
            store[var] = raw
            grad[idx] = (values[0] - values[1]) / (2 * h)
        grads[var] = grad
    return grads


def fit(x, steps, lr=0.02, progress=True):
    """GDN's variables fitted to x by ``steps`` Adam steps (a store); with ``progress``,
    the NLL every tenth of the way."""
    store = cgdn.ParameterStore()
    cgdn.gdn(x, name="g", store=store)          # creates g/reparam_beta, g/reparam_gamma
    n, c = x.shape[0], x.shape[-1]
    moments = {}
    start = time.perf_counter()
    for t in range(1, steps + 1):
        value, y = nll(x, store)
        if progress and (t == 1 or t % max(1, steps // 10) == 0):
            print(f"  step {t:4d}/{steps}: NLL of u {value:.4f} nats/dim, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
        # Gaussian term: d/dy of mean(|y|^2 / 2) / C is y / (N C)
        _, grads = cgdn.gdn_grads(x, y / (n * c), name="g", store=store)
        for var, grad in logdet_gradient(x, store).items():
            grads[var] = grads[var] - grad / c
        for var, grad in grads.items():          # Adam
            m, v = moments.get(var, (np.zeros_like(grad), np.zeros_like(grad)))
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            moments[var] = (m, v)
            step = lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            store[var] = store[var] - step
    return store


def pyplot():
    """matplotlib.pyplot on a file backend, or None (with a message) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure")
        return None
    return plt


def output_path(figure, out, name):
    """``figure`` if given, else ``name`` in the folder ``out`` (made if needed), else in a
    new temporary folder: an example never writes into the current directory unasked."""
    if figure:
        return figure
    if out is None:
        out = tempfile.mkdtemp(prefix="cgdn-example-")
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, name)


def gaussian_nll(x):
    """The NLL of the best Gaussian for x, for reference."""
    c = x.shape[-1]
    cov = np.cov(x.reshape(-1, c).T)
    return 0.5 * (np.linalg.slogdet(2 * math.pi * math.e * cov)[1]) / c


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the figure (default: a new temporary folder)")
    parser.add_argument("--figure", metavar="PATH",
                        help="where to save the joint histograms (needs matplotlib; "
                             "default: density_model.png in --out)")
    args = parser.parse_args()
    figure = output_path(args.figure, args.out, "density_model.png")
    rng = np.random.default_rng(0)
    x = sample(args.samples, rng)
    w, log_det_w = whitening(x)
    u = x @ w.T                                   # whitened: uncorrelated, still not Gaussian
    print(f"fitting GDN to {args.samples} samples x 2 channels, {args.steps} Adam steps "
          f"(cgdn {cgdn.show_config(mode='dicts')['max_threads']} threads):", flush=True)
    start = time.perf_counter()
    store = cgdn.ParameterStore()
    cgdn.gdn(u, name="g", store=store)
    before, y0 = nll(u, store, log_det_w=log_det_w)
    store = fit(u, args.steps)
    after, y = nll(u, store, log_det_w=log_det_w)
    elapsed = time.perf_counter() - start
    print(f"data: Gaussian scale mixture, {args.samples} samples x 2 channels")
    print(f"NLL of the best Gaussian fit to x:         {gaussian_nll(x):.4f} nats/dim")
    print(f"NLL through W then GDN, at initialization: {before:.4f} nats/dim")
    print(f"NLL through W then GDN, {args.steps} Adam steps:  {after:.4f} nats/dim "
          f"({elapsed:.1f} s)")
    print("effective beta:", np.round(cgdn.params.reparam_value(store["g/reparam_beta"],
                                                                 1e-6, 2.0**-18), 4))
    print("effective gamma:\n", np.round(cgdn.params.reparam_value(store["g/reparam_gamma"],
                                                                    0.0, 2.0**-18), 4))
    back = cgdn.gdn_inverse(y, cgdn.params.reparam_value(store["g/reparam_beta"], 1e-6, 2.0**-18),
                            cgdn.params.reparam_value(store["g/reparam_gamma"], 0.0, 2.0**-18))
    print(f"inverse round trip: max |u - gdn_inverse(gdn(u))| / max |u| = "
          f"{np.abs(back - u).max() / np.abs(u).max():.1e}")
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, data, title in ((axes[0], x, "x: Gaussian scale mixture"),
                            (axes[1], u, "u = W x: whitened"),
                            (axes[2], y, f"y = GDN(u), fitted (NLL {after:.3f})")):
        d = data.reshape(-1, 2)
        lim = np.percentile(np.abs(d), 99.5)
        counts, xe, ye = np.histogram2d(d[:, 0], d[:, 1], bins=80, range=[[-lim, lim]] * 2)
        ax.imshow(np.log1p(counts.T), origin="lower", extent=[-lim, lim, -lim, lim],
                  cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("channel 0")
        ax.set_ylabel("channel 1")
    fig.tight_layout()
    fig.savefig(figure, dpi=100)
    print(f"figure: {figure} (joint histograms, log counts)")


if __name__ == "__main__":
    main()
