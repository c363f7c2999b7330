"""What GDN does to a natural image: it removes the "bow-tie" dependency.

Filter responses of natural images at neighbouring positions are uncorrelated but not
independent: the spread of one grows with the magnitude of its neighbour, so the
histogram of one conditioned on the other is shaped like a bow tie (Simoncelli; Ballé,
Laparra, Simoncelli, ICLR 2016). GDN divides each response by a pool of its neighbours'
squared responses; fitted as a density model it flattens the bow tie.

Here: a horizontal derivative filter on scikit-image's ``camera`` image, its responses at
the four positions of every 2x2 block as four channels, GDN fitted on them (the fit of
``examples/density_model.py``: Adam steps on the negative log-likelihood under a Gaussian),
and the conditional histograms of neighbouring responses before and after.

Needs scikit-image (for the image) and matplotlib (for the figure).
Run: python examples/natural_image.py [--steps 200] [--out DIR | --figure PATH]
(the figure goes to a new temporary folder unless --out or --figure says where).
"""
import argparse
import os
import sys
import time

import numpy as np

import cgdn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from density_model import fit, nll, output_path, pyplot  # noqa: E402  (shared with the density example)


def responses(image):
    """(N, 1, 1, 4): a derivative filter's responses at the 4 positions of each 2x2 block."""
    img = image.astype(np.float64) / 255.0
    img = img - img.mean()
    r = img[:, 1:] - img[:, :-1]                    # horizontal derivative
    # dither the 8-bit steps (uniform noise below one grey level) so that the histograms
    # show the distribution and not the quantization grid
    r = r + np.random.default_rng(1).uniform(-0.5, 0.5, r.shape) / 255.0
    r = r[: r.shape[0] // 2 * 2, : r.shape[1] // 2 * 2]
    blocks = np.stack([r[0::2, 0::2], r[0::2, 1::2], r[1::2, 0::2], r[1::2, 1::2]], axis=-1)
    blocks = blocks.reshape(-1, 1, 1, 4)
    return blocks / blocks.std()


def conditional_histogram(ax, a, b, title):
    """Histogram of b given a, each column scaled to its maximum: the bow tie when b's
    spread grows with |a|."""
    lim = np.percentile(np.abs(np.concatenate([a, b])), 99)
    counts, _, _ = np.histogram2d(a, b, bins=41, range=[[-lim, lim]] * 2)
    counts = counts / np.maximum(counts.max(axis=1, keepdims=True), 1)
    ax.imshow(counts.T, origin="lower", extent=[-lim, lim, -lim, lim], cmap="gray_r",
              aspect="auto", vmin=0, vmax=1)
    ax.set_title(title)
    ax.set_xlabel("response at a position")
    ax.set_ylabel("response of its neighbour")


def spread_ratio(a, b):
    """std of b where |a| is in its top decile over std of b where |a| is in its bottom
    half: 1 when b's spread does not depend on a (no bow tie)."""
    big = np.abs(a) >= np.percentile(np.abs(a), 90)
    small = np.abs(a) <= np.percentile(np.abs(a), 50)
    return float(b[big].std() / b[small].std())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the figure (default: a new temporary folder)")
    parser.add_argument("--figure", metavar="PATH",
                        help="where to save the figure (default: natural_image.png in --out)")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps of the fit")
    parser.add_argument("--fit-samples", type=int, default=20000,
                        help="blocks the fit uses (a random subset)")
    args = parser.parse_args()
    figure = output_path(args.figure, args.out, "natural_image.png")
    try:
        from skimage import data
    except ImportError:
        sys.exit("this example needs scikit-image (pip install scikit-image) for its image")
    x = responses(data.camera())
    rng = np.random.default_rng(0)
    sample = x[rng.choice(x.shape[0], min(args.fit_samples, x.shape[0]), replace=False)]
    print(f"camera image: {x.shape[0]} blocks of 4 neighbouring derivative responses; "
          f"fitting GDN on {sample.shape[0]} of them, {args.steps} Adam steps:", flush=True)
    start = time.perf_counter()
    store = fit(sample, args.steps)
    print(f"fit done in {time.perf_counter() - start:.1f} s", flush=True)
    y = cgdn.gdn(x, name="g", reuse=True, store=store)
    before_nll, _ = nll(x, cgdn_store_at_init(x))
    after_nll, _ = nll(x, store)
    pairs = [(0, 1), (0, 2)]
    print(f"NLL under a Gaussian: {before_nll:.4f} -> {after_nll:.4f} nats/dim after "
          f"{args.steps} steps")
    for i, j in pairs:
        print(f"spread of channel {j} given |channel {i}| large vs small: "
              f"{spread_ratio(x[..., i].ravel(), x[..., j].ravel()):.2f} before GDN, "
              f"{spread_ratio(y[..., i].ravel(), y[..., j].ravel()):.2f} after")
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    axes[0].imshow(data.camera(), cmap="gray")
    axes[0].set_title("scikit-image's camera")
    axes[0].axis("off")
    conditional_histogram(axes[1], x[..., 0].ravel(), x[..., 1].ravel(),
                          "before GDN: the bow tie")
    conditional_histogram(axes[2], y[..., 0].ravel(), y[..., 1].ravel(),
                          "after GDN (fitted)")
    fig.tight_layout()
    fig.savefig(figure, dpi=90)
    print(f"figure: {figure}")


def cgdn_store_at_init(x):
    store = cgdn.ParameterStore()
    cgdn.gdn(x[:1], name="g", store=store)
    return store


if __name__ == "__main__":
    main()
