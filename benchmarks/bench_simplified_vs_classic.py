"""Simplified GDN (alpha = 1, epsilon = 1) against classic GDN, side by side.

Usage: python benchmarks/bench_simplified_vs_classic.py

For each layout, channel count and thread count, interleaves 7 rounds of classic and
simplified ``cgdn.apply_gdn`` (each the best of 5 calls) on the same float32 input and
prints the medians and their ratio.
"""
import numpy as np

import cgdn
from cgdn._bench import time_block  # best of N calls after a warm-up call


def main():
    rng = np.random.default_rng(0)
    print("| layout | C | threads | classic ms | simplified ms | simplified / classic |")
    print("| --- | --- | --- | --- | --- | --- |")
    for layout in ("channels_last", "channels_first"):
        for c, side in ((3, 256), (16, 256), (64, 128), (192, 128)):
            shape = (1, side, side, c) if layout == "channels_last" else (1, c, side, side)
            x = rng.standard_normal(shape).astype(np.float32)
            out = np.empty_like(x)
            beta = np.ones(c, np.float32)
            gamma = (0.1 * np.eye(c) + 0.001).astype(np.float32)
            for threads in (1, 2):
                classic, simplified = [], []
                for _ in range(7):
                    classic.append(time_block(lambda: cgdn.apply_gdn(
                        x, beta, gamma, out=out, num_threads=threads, data_format=layout), 5))
                    simplified.append(time_block(lambda: cgdn.apply_gdn(
                        x, beta, gamma, out=out, num_threads=threads, data_format=layout,
                        alpha=1, epsilon=1), 5))
                a, b = np.median(classic) * 1e3, np.median(simplified) * 1e3
                print(f"| {layout} | {c} | {threads} | {a:.3f} | {b:.3f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
