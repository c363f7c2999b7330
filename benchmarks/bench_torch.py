"""cgdn inside PyTorch: cgdn.torch.GDN against CompressAI's GDN modules.

Two tables, float32, inference (``torch.no_grad()``), each row timed in interleaved
rounds (CompressAI, then cgdn, then the next round), medians over the rounds:

* layers: every GDN / IGDN layer shape of CompressAI's ``bmshj2018_factorized``,
  ``bmshj2018_hyperprior`` and ``mbt2018_mean`` at qualities 1, 4 and 8 for a Kodak-sized
  input (1, 3, 512, 768): N = 128 or 192 channels at 256 x 384, 128 x 192 and 64 x 96, in
  NCHW and ``torch.channels_last`` memory format, 1 and 2 threads;
* models: the analysis (``g_a``) and synthesis (``g_s``) transforms of those models at
  quality 8 (N = 192, M = 320), stock against ``cgdn.torch.accelerate``-d, 1 and 2
  threads. The three models' ``g_a`` / ``g_s`` have the same layers at a given quality
  (convolutions 5x5 stride 2 between GDN layers), so one stack stands for the three.

The stacks are built from ``compressai.layers.GDN`` and torch's convolutions as CompressAI's
models build them (``compressai.zoo`` cannot be imported where torchvision has no build for
the installed torch; the GDN modules are CompressAI's own either way). Needs torch and
compressai (``pip install --no-deps compressai==1.2.8``).

    python benchmarks/bench_torch.py                      # both tables
    python benchmarks/bench_torch.py --layers --rounds 7 --out results.md
"""
import argparse
import statistics
import sys
import time

import torch
from torch import nn

import cgdn
import cgdn.torch as ct

from cgdn._bench import machine_name


def compressai_layers():
    layers = ct._compressai_layers()
    if layers is None:
        sys.exit("compressai is not installed: pip install --no-deps compressai==1.2.8")
    return layers


def _trained_like(module, seed):
    """Parameters away from the initial identity (as trained ones are)."""
    g = torch.Generator().manual_seed(seed)
    c = module.beta.shape[0]
    with torch.no_grad():
        module.beta.add_(torch.rand(c, generator=g))
        module.gamma.add_(torch.rand(c, c, generator=g) * 0.05)
    return module


def transforms(cl, n, m):
    """``g_a`` and ``g_s`` of bmshj2018_factorized / _hyperprior / mbt2018_mean."""
    torch.manual_seed(0)

    def conv(i, o):
        return nn.Conv2d(i, o, 5, stride=2, padding=2)

    def deconv(i, o):
        return nn.ConvTranspose2d(i, o, 5, stride=2, padding=2, output_padding=1)

    g_a = nn.Sequential(conv(3, n), cl.GDN(n), conv(n, n), cl.GDN(n), conv(n, n), cl.GDN(n),
                        conv(n, m))
    g_s = nn.Sequential(deconv(m, n), cl.GDN(n, inverse=True), deconv(n, n),
                        cl.GDN(n, inverse=True), deconv(n, n), cl.GDN(n, inverse=True),
                        deconv(n, 3))
    for stack in (g_a, g_s):
        for i, module in enumerate(stack):
            if isinstance(module, cl.GDN):
                _trained_like(module, i)
        stack.eval()
    return g_a, g_s


def _time(fn, x, min_time):
    """Median of calls until min_time has passed (at least 3)."""
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compare(ref, mine, x, rounds, min_time):
    """Medians over interleaved rounds of (ref, mine), in ms, and the max difference."""
    with torch.no_grad():
        diff = (ref(x) - mine(x)).abs().max().item()
        a, b = [], []
        for _ in range(rounds):
            a.append(_time(ref, x, min_time))
            b.append(_time(mine, x, min_time))
    return statistics.median(a) * 1e3, statistics.median(b) * 1e3, diff


def layer_rows(cl, threads, rounds, min_time):
    rows = []
    for n in (128, 192):
        for h, w in ((256, 384), (128, 192), (64, 96)):
            for inverse in (False, True):
                ref = _trained_like(cl.GDN(n, inverse=inverse), n + h)
                mine = ct.GDN.from_module(ref)
                x = torch.randn(1, n, h, w, generator=torch.Generator().manual_seed(h))
                for fmt, memory_format in (("NCHW", torch.contiguous_format),
                                           ("channels_last", torch.channels_last)):
                    xf = x.to(memory_format=memory_format)
                    for t in threads:
                        torch.set_num_threads(t)
                        a, b, diff = compare(ref, mine, xf, rounds, min_time)
                        rows.append(("IGDN" if inverse else "GDN", (1, n, h, w), fmt, t, a, b,
                                     diff))
                        print(f"{rows[-1][0]:4} {rows[-1][1]} {fmt:13} {t} thr  compressai "
                              f"{a:9.3f} ms  cgdn {b:9.3f} ms  {a / b:5.2f}x", flush=True)
    return rows


def model_rows(cl, threads, rounds, min_time, quality_channels=(192, 320)):
    n, m = quality_channels
    g_a, g_s = transforms(cl, n, m)
    fast_a, fast_s = transforms(cl, n, m)
    ct.accelerate(fast_a)
    ct.accelerate(fast_s)
    x = torch.rand(1, 3, 512, 768, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = g_a(x)
    rows = []
    for name, ref, mine, inp in (("g_a", g_a, fast_a, x), ("g_s", g_s, fast_s, y)):
        for t in threads:
            torch.set_num_threads(t)
            a, b, diff = compare(ref, mine, inp, rounds, min_time)
            rows.append((name, tuple(inp.shape), t, a, b, diff))
            print(f"{name} {tuple(inp.shape)} {t} thr  stock {a:9.1f} ms  accelerated "
                  f"{b:9.1f} ms  {a / b:5.2f}x  max diff {diff:.1e}", flush=True)
    return rows


def markdown(layer, models, args):
    lines = [f"cgdn {cgdn.__version__}, torch {torch.__version__}, CPU: {machine_name()}, "
             f"kernels: {cgdn.show_config(mode='dicts')['isa']}; float32, torch.no_grad(); "
             f"medians of {args.rounds} interleaved rounds (each the median of calls over "
             f">= {args.min_time} s)", ""]
    if layer:
        lines += ["| layer | shape | memory format | threads | CompressAI ms | cgdn ms | "
                  "speed-up |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {k} | {s} | {f} | {t} | {a:.3f} | {b:.3f} | **{a / b:.2f}x** |"
                  for k, s, f, t, a, b, _ in layer]
        lines.append("")
    if models:
        lines += ["| transform | input | threads | stock ms | accelerated ms | speed-up | "
                  "max abs diff |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {k} | {s} | {t} | {a:.1f} | {b:.1f} | **{a / b:.2f}x** | {d:.1e} |"
                  for k, s, t, a, b, d in models]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", action="store_true", help="only the layer table")
    parser.add_argument("--models", action="store_true", help="only the g_a / g_s table")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts (torch.set_num_threads; cgdn follows it)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per row")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds of calls per timing (at least 3 calls)")
    parser.add_argument("--out", help="also write the tables as Markdown to this file")
    args = parser.parse_args(argv)
    both = not (args.layers or args.models)
    cl = compressai_layers()
    before = torch.get_num_threads()
    try:
        layer = layer_rows(cl, args.threads, args.rounds, args.min_time) \
            if both or args.layers else []
        models = model_rows(cl, args.threads, args.rounds, args.min_time) \
            if both or args.models else []
    finally:
        torch.set_num_threads(before)
    text = markdown(layer, models, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
