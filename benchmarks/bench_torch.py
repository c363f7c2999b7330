"""cgdn inside PyTorch: cgdn.torch.GDN against CompressAI's GDN modules.

Two tables, float32, inference (``torch.no_grad()``), each row timed in interleaved
rounds (CompressAI, then cgdn, then the next round), medians over the rounds:

* layers: every GDN / IGDN layer shape of CompressAI's ``bmshj2018_factorized``,
  ``bmshj2018_hyperprior`` and ``mbt2018_mean`` at qualities 1, 4 and 8 for a Kodak-sized
  input (1, 3, 512, 768): N = 128 or 192 channels at 256 x 384, 128 x 192 and 64 x 96, in
  NCHW and ``torch.channels_last`` memory format, 1 and 2 threads; on 1 thread the bare
  product of the channel mix (NumPy's BLAS, one thread) runs in the same rounds;
* models: the analysis (``g_a``) and synthesis (``g_s``) transforms of those models at
  quality 8 (N = 192, M = 320), stock against ``cgdn.torch.accelerate``-d, 1 and 2
  threads. The three models' ``g_a`` / ``g_s`` have the same layers at a given quality
  (convolutions 5x5 stride 2 between GDN layers), so one stack stands for the three.
  On 1 thread a third stack runs in the same rounds, its GDN layers replaced by their
  bare channel-mix product (NumPy's BLAS, one thread, into memory kept across calls):
  the speed-up no GDN implementation can much exceed.

The stacks are built from ``compressai.layers.GDN`` and torch's convolutions as CompressAI's
models build them (``compressai.zoo`` cannot be imported where torchvision has no build for
the installed torch; the GDN modules are CompressAI's own either way). Needs torch and
compressai (``pip install --no-deps compressai==1.2.8``).

    python benchmarks/bench_torch.py                      # both tables
    python benchmarks/bench_torch.py --layers --rounds 7 --out results.md
    python benchmarks/bench_torch.py --breakdown          # where the time goes
"""
import argparse
import statistics
import sys
import time

import numpy as np
import threadpoolctl
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


def compare(ref, mine, x, rounds, min_time, *others):
    """Medians over interleaved rounds of (ref, mine, *others), in ms, and the max
    difference between ref and mine."""
    with torch.no_grad():
        diff = (ref(x) - mine(x)).abs().max().item()
        times = [[] for _ in range(2 + len(others))]
        for _ in range(rounds):
            for fn, t in zip((ref, mine) + others, times):
                t.append(_time(fn, x, min_time))
    return (*(statistics.median(t) * 1e3 for t in times), diff)


def compare_with_bare(ref, mine, bare, x, rounds, min_time):
    """compare() of ref and mine, and on 1 thread of ``bare`` too (NumPy's BLAS held to
    one thread), as (ref ms, mine ms, bare ms or None, max difference). On more threads
    NumPy's and torch's thread pools would fight over the cores: no bare time."""
    if torch.get_num_threads() == 1:
        with threadpoolctl.threadpool_limits(1):
            return compare(ref, mine, x, rounds, min_time, bare)
    a, b, diff = compare(ref, mine, x, rounds, min_time)
    return a, b, None, diff


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
                        a, b, c, diff = compare_with_bare(ref, mine, _BareProduct(ref), xf,
                                                          rounds, min_time)
                        rows.append(("IGDN" if inverse else "GDN", (1, n, h, w), fmt, t, a, b,
                                     c, diff))
                        product = "" if c is None else f"  product {c:9.3f} ms  {b / c:5.2f}"
                        print(f"{rows[-1][0]:4} {rows[-1][1]} {fmt:13} {t} thr  compressai "
                              f"{a:9.3f} ms  cgdn {b:9.3f} ms  {a / b:5.2f}x{product}",
                              flush=True)
    return rows


class _BareProduct(nn.Module):
    """A GDN layer's channel mix and nothing else: ``gamma @ x`` by NumPy's BLAS into
    memory kept across calls (no normalization, no allocation), on NCHW or
    channels_last tensors of batch 1. What no GDN implementation can beat by much: a
    transform with these in place of its GDN layers takes the convolutions' time plus
    the best BLAS's products."""

    def __init__(self, module):
        super().__init__()
        self.gamma = np.ascontiguousarray(module.gamma.detach().numpy())
        self.out = None

    def forward(self, x):
        c = x.shape[1]
        channels_last = not x.is_contiguous()
        if channels_last:       # (H * W, C) @ gamma.T
            xv = x.permute(0, 2, 3, 1).numpy().reshape(-1, c)
        else:                   # gamma @ (C, H * W)
            xv = x.numpy().reshape(c, -1)
        if self.out is None or self.out.shape != xv.shape:
            self.out = np.empty_like(xv)
        if channels_last:
            np.matmul(xv, self.gamma.T, out=self.out)
            return torch.from_numpy(self.out.reshape(x.shape[0], x.shape[2], x.shape[3],
                                                     c)).permute(0, 3, 1, 2)
        np.matmul(self.gamma, xv, out=self.out)
        return torch.from_numpy(self.out.reshape(x.shape))


def _with_bare_products(stack, cl):
    for i, module in enumerate(stack):
        if isinstance(module, cl.GDN):
            stack[i] = _BareProduct(module)
    return stack


def model_rows(cl, threads, rounds, min_time, quality_channels=(192, 320)):
    n, m = quality_channels
    g_a, g_s = transforms(cl, n, m)
    fast_a, fast_s = transforms(cl, n, m)
    ct.accelerate(fast_a)
    ct.accelerate(fast_s)
    bare_a, bare_s = (_with_bare_products(s, cl) for s in transforms(cl, n, m))
    x = torch.rand(1, 3, 512, 768, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = g_a(x)
    rows = []
    for name, ref, mine, bare, inp in (("g_a", g_a, fast_a, bare_a, x),
                                       ("g_s", g_s, fast_s, bare_s, y)):
        for t in threads:
            torch.set_num_threads(t)
            a, b, c, diff = compare_with_bare(ref, mine, bare, inp, rounds, min_time)
            rows.append((name, tuple(inp.shape), t, a, b, c, diff))
            floor = "" if c is None else f"  bare products {c:9.1f} ms  {a / c:5.2f}x"
            print(f"{name} {tuple(inp.shape)} {t} thr  stock {a:9.1f} ms  accelerated "
                  f"{b:9.1f} ms  {a / b:5.2f}x{floor}  max diff {diff:.1e}", flush=True)
    return rows


def breakdown_rows(cl, rounds, min_time, quality_channels=(192, 320)):
    """1 thread: each module's time inside ``g_a`` / ``g_s`` (forward hooks, medians over
    rounds) for the stock, accelerated and bare-product stacks; then the largest layer
    with its output memory reused (the default) and allocated afresh at every call."""
    n, m = quality_channels
    stacks = {"stock": transforms(cl, n, m), "cgdn": transforms(cl, n, m),
              "bare products": [_with_bare_products(s, cl) for s in transforms(cl, n, m)]}
    for stack in stacks["cgdn"]:
        ct.accelerate(stack)
    times = {}

    def hook(stack, key):
        for i, module in enumerate(stack):
            def pre(mod, inputs):
                mod.__dict__["_bench_t"] = time.perf_counter()

            def post(mod, inputs, output, key=key + (i,)):
                times.setdefault(key, []).append(time.perf_counter() - mod._bench_t)
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)

    for kind, (g_a, g_s) in stacks.items():
        hook(g_a, (kind, "g_a"))
        hook(g_s, (kind, "g_s"))
    x = torch.rand(1, 3, 512, 768, generator=torch.Generator().manual_seed(1))
    torch.set_num_threads(1)
    with torch.no_grad(), threadpoolctl.threadpool_limits(1):
        y = stacks["stock"][0](x)
        for _ in range(rounds + 1):
            for g_a, g_s in stacks.values():
                g_a(x)
                g_s(y)
        print("1 thread, ms per module inside the transform (medians of "
              f"{rounds} rounds after one warm-up):")
        for j, name in enumerate(("g_a", "g_s")):
            for kind, pair in stacks.items():
                row = [statistics.median(times[(kind, name, i)][1:]) * 1e3
                       for i in range(len(pair[j]))]
                print(f"  {name} {kind:13}" + "".join(f"{v:8.1f}" for v in row) +
                      f"   GDN layers {sum(row[1::2]):7.1f}   all {sum(row):7.1f}")
        for inverse in (False, True):
            ref = _trained_like(cl.GDN(n, inverse=inverse), 1)
            fresh, reused = ct.GDN.from_module(ref), ct.GDN.from_module(ref)
            fresh.reuse_output = False
            x = torch.randn(1, n, 256, 384, generator=torch.Generator().manual_seed(2))
            a, b, _ = compare(fresh, reused, x, rounds, min_time)
            print(f"{'IGDN' if inverse else 'GDN'} (1, {n}, 256, 384) NCHW, 1 thread: output "
                  f"allocated at every call {a:.1f} ms, reused {b:.1f} ms ({a / b:.2f}x)")


def markdown(layer, models, args):
    lines = [f"cgdn {cgdn.__version__}, torch {torch.__version__}, CPU: {machine_name()}, "
             f"kernels: {cgdn.show_config(mode='dicts')['isa']}; float32, torch.no_grad(); "
             f"medians of {args.rounds} interleaved rounds (each the median of calls over "
             f">= {args.min_time} s)", ""]
    if layer:
        lines += ["| layer | shape | memory format | threads | CompressAI ms | cgdn ms | "
                  "speed-up | bare product ms | cgdn / product |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {k} | {s} | {f} | {t} | {a:.3f} | {b:.3f} | **{a / b:.2f}x** | "
                  f"{'' if c is None else f'{c:.3f}'} | "
                  f"{'' if c is None else f'{b / c:.2f}'} |"
                  for k, s, f, t, a, b, c, _ in layer]
        lines.append("")
    if models:
        lines += ["| transform | input | threads | stock ms | accelerated ms | speed-up | "
                  "GDN as bare products ms | its speed-up | max abs diff |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {k} | {s} | {t} | {a:.1f} | {b:.1f} | **{a / b:.2f}x** | "
                  f"{'' if c is None else f'{c:.1f}'} | "
                  f"{'' if c is None else f'{a / c:.2f}x'} | {d:.1e} |"
                  for k, s, t, a, b, c, d in models]
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
    parser.add_argument("--breakdown", action="store_true",
                        help="instead of the tables: each module's time inside g_a and g_s "
                             "(1 thread), and the largest layer with its output memory "
                             "reused against allocated at every call")
    args = parser.parse_args(argv)
    both = not (args.layers or args.models)
    cl = compressai_layers()
    before = torch.get_num_threads()
    try:
        if args.breakdown:
            breakdown_rows(cl, args.rounds, args.min_time)
            return
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
