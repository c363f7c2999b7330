"""Benchmark cgdn against its floors and peers, interleaved in one process.

For each shape it times, in interleaved rounds:

- ``cgdn``: ``cgdn.apply_gdn(x, beta, gamma, out=out)``;
- ``numpy``: the plain NumPy reference (``cgdn._reference.reference_gdn`` in the input dtype);
- ``gemm``: the bare BLAS product ``(P, C) @ (C, C)`` into a preallocated array (NumPy's
  BLAS limited to the same thread count): the floor for large C;
- ``copy`` and ``sqrt``: ``np.copyto`` and ``np.sqrt(out=)`` of the same array, split over
  the same number of Python threads: the memory floor for small C;
- ``torch``: CompressAI-style GDN in PyTorch (conv2d for channels_first, addmm for
  channels_last), when torch is importable.

It prints a Markdown table of medians (ms) and ratios, ``threadpool_info()`` and its own
command line. ``python benchmarks/bench_gdn.py --help`` lists the options; ``python -m
cgdn bench`` runs the quick form with a progress display. Benchmark commands on the
project machine unset ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``.
"""
import argparse
import json
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import cgdn
from cgdn._reference import reference_gdn

DEFAULT_SHAPES = [
    "1,256,256,3", "1,256,256,16", "1,128,128,64", "1,128,128,128", "1,128,128,192",
    "8,64,64,192", "1,64,64,320", "1,384,256,192",
]
QUICK_SHAPES = ["1,128,128,3", "1,128,128,16", "1,64,64,64", "1,64,64,192"]


def parse_shape(text):
    shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: use N,H,W,C (channels last)")
    return shape


def _threaded(fn_chunk, n_threads, pool):
    """Run fn_chunk(i, n) for i in range(n) on n Python threads (NumPy drops the GIL)."""
    if n_threads == 1:
        return lambda: fn_chunk(0, 1)
    return lambda: list(pool.map(lambda i: fn_chunk(i, n_threads), range(n_threads)))


def _chunks(a, i, n):
    flat = a.reshape(-1)
    step = -(-flat.size // n)
    return flat[i * step:(i + 1) * step]


def make_contenders(x, beta, gamma, args, n_threads, pool):
    """name -> (callable, setup) for one shape and thread count."""
    fmt = args.data_format
    c = x.shape[-1] if fmt == "channels_last" else x.shape[1]
    out = np.empty_like(x)
    pixels = x.reshape(-1, c) if fmt == "channels_last" else None
    mat = np.ascontiguousarray(np.moveaxis(x, 1, -1).reshape(-1, c)) if pixels is None else pixels
    gemm_out = np.empty_like(mat)
    scratch = np.empty_like(x)
    magnitude = np.abs(x)
    kw = dict(inverse=args.inverse, alpha=args.alpha, epsilon=args.epsilon, data_format=fmt)
    contenders = {
        "cgdn": (lambda: cgdn.apply_gdn(x, beta, gamma, out=out, num_threads=n_threads,
                                        **kw), None),
        "gemm": (lambda: np.matmul(mat, gamma, out=gemm_out), "blas"),
        "copy": (_threaded(lambda i, n: np.copyto(_chunks(scratch, i, n), _chunks(x, i, n)),
                           n_threads, pool), None),
        "sqrt": (_threaded(lambda i, n: np.sqrt(_chunks(magnitude, i, n),
                                                out=_chunks(scratch, i, n)),
                           n_threads, pool), None),
    }
    if not args.no_numpy:
        contenders["numpy"] = (lambda: reference_gdn(x, beta, gamma, dtype=x.dtype, **kw),
                               "blas")
    torch_fn = _torch_contender(x, beta, gamma, args, n_threads)
    if torch_fn is not None:
        contenders["torch"] = (torch_fn, "torch")
    return contenders


def _torch_contender(x, beta, gamma, args, n_threads):
    if args.no_torch:
        return None
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    if args.alpha != 2 or args.epsilon != 0.5:
        return None
    c = beta.shape[0]
    tx = torch.from_numpy(np.ascontiguousarray(x))
    tbeta = torch.from_numpy(beta)
    if args.data_format == "channels_first" and x.ndim == 4:
        weight = torch.from_numpy(np.ascontiguousarray(gamma.T)).reshape(c, c, 1, 1)

        def run():
            norm = F.conv2d(tx * tx, weight, tbeta)
            return tx * torch.sqrt(norm) if args.inverse else tx * torch.rsqrt(norm)
    elif args.data_format == "channels_last":
        tgamma = torch.from_numpy(gamma)
        flat = tx.reshape(-1, c)

        def run():
            norm = torch.addmm(tbeta, flat * flat, tgamma)
            return flat * torch.sqrt(norm) if args.inverse else flat * torch.rsqrt(norm)
    else:
        return None

    def call():
        torch.set_num_threads(n_threads)
        with torch.no_grad():
            run()
    return call


def time_block(fn, repeats):
    fn()  # warm-up inside the block: wakes OpenMP / BLAS workers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_shape(shape, args, n_threads, pool):
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    if args.data_format == "channels_first":
        shape = (shape[0], shape[-1]) + tuple(shape[1:-1])
    x = rng.standard_normal(shape).astype(dtype)
    c = shape[-1] if args.data_format == "channels_last" else shape[1]
    beta = rng.uniform(0.5, 1.5, c).astype(dtype)
    gamma = (0.1 * np.eye(c) + rng.uniform(0, 0.01, (c, c))).astype(dtype)
    contenders = make_contenders(x, beta, gamma, args, n_threads, pool)
    samples = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (fn, kind) in contenders.items():
            if kind == "blas":
                with threadpool_limits(n_threads, user_api="blas"):
                    samples[name].append(time_block(fn, args.repeats))
                time.sleep(args.pause)  # let OpenBLAS workers park before the next block
            else:
                samples[name].append(time_block(fn, args.repeats))
    return {name: 1e3 * float(np.median(v)) for name, v in samples.items()}


def ratios(row, n_channels):
    floor_mem = max(row["copy"], row["sqrt"])
    result = {
        "cgdn/gemm": row["cgdn"] / row["gemm"],
        "cgdn/mem": row["cgdn"] / floor_mem,
    }
    if "numpy" in row:
        result["numpy/cgdn"] = row["numpy"] / row["cgdn"]
    if "torch" in row:
        result["torch/cgdn"] = row["torch"] / row["cgdn"]
    return result


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=None,
                        help="N,H,W,C shapes (channels last order; permuted for channels_first)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--data-format", choices=["channels_last", "channels_first"],
                        default="channels_last")
    parser.add_argument("--inverse", action="store_true")
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--epsilon", type=float, default=0.5)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--repeats", type=int, default=5, help="calls per block (best)")
    parser.add_argument("--pause", type=float, default=0.25,
                        help="seconds to sleep after each NumPy/BLAS block")
    parser.add_argument("--quick", action="store_true", help="small shapes, 3 rounds")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PNG", help="plot time / floor vs C (matplotlib)")
    parser.add_argument("--progress", action="store_true", help="print progress to stderr")
    parser.add_argument("--replot", metavar="JSON",
                        help="only redraw --plot from the results of an earlier --json run")
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        for key in ("inverse", "dtype", "data_format"):
            setattr(args, key, saved["args"][key])
        _plot(saved["results"], args)
        return saved["results"]
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.pause = min(args.pause, 0.05)
    shapes = args.shapes or [parse_shape(s) for s in (QUICK_SHAPES if args.quick
                                                       else DEFAULT_SHAPES)]

    program = prog or f"python {sys.argv[0]}"
    command = " ".join([program, *(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                              else argv))])
    results = []
    total = len(shapes) * len(args.threads)
    with ThreadPoolExecutor(max_workers=max(args.threads)) as pool:
        for k, shape in enumerate((s, t) for s in shapes for t in args.threads):
            shape, n_threads = shape
            if args.progress:
                print(f"[{k + 1}/{total}] shape {shape} threads {n_threads} ...",
                      file=sys.stderr, flush=True)
            row = bench_shape(shape, args, n_threads, pool)
            results.append({"shape": list(shape), "threads": n_threads, "ms": row,
                            "ratios": ratios(row, shape[-1])})

    names = [n for n in ("cgdn", "numpy", "torch", "gemm", "copy", "sqrt")
             if any(n in r["ms"] for r in results)]
    ratio_names = [n for n in ("cgdn/gemm", "cgdn/mem", "numpy/cgdn", "torch/cgdn")
                   if any(n in r["ratios"] for r in results)]
    print(f"cgdn {cgdn.__version__}, {args.dtype}, {args.data_format}, "
          f"{'IGDN' if args.inverse else 'GDN'}, alpha={args.alpha:g}, "
          f"epsilon={args.epsilon:g}; median of {args.rounds} interleaved rounds, each the "
          f"best of {args.repeats} calls; times in ms; mem = max(copy, sqrt)\n")
    print("| shape (N,H,W,C) | threads | " + " | ".join(names + ratio_names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names + ratio_names) + " |")
    for r in results:
        cells = [f"{r['ms'][n]:.3f}" if n in r["ms"] else "-" for n in names]
        cells += [f"{r['ratios'][n]:.2f}" if n in r["ratios"] else "-" for n in ratio_names]
        print(f"| {','.join(map(str, r['shape']))} | {r['threads']} | " + " | ".join(cells)
              + " |")
    print("\nthreadpool_info():")
    for pool_info in threadpool_info():
        print(f"  {pool_info.get('user_api')}: {pool_info.get('internal_api')} "
              f"{pool_info.get('version')} {pool_info.get('architecture', '')} "
              f"threads={pool_info.get('num_threads')}")
    print(f"\ncommand: {command}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "args": vars(args), "results": results,
                       "threadpool_info": threadpool_info()}, f, indent=1, default=str)
    if args.plot:
        _plot(results, args)
    return results


def _plot(results, args):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return
    labels = []
    for r in results:
        label = ",".join(map(str, r["shape"]))
        if label not in labels:
            labels.append(label)
    fig, ax = plt.subplots(figsize=(7, 4))
    for n_threads in sorted({r["threads"] for r in results}):
        rows = {",".join(map(str, r["shape"])): r for r in results
                if r["threads"] == n_threads}
        xs = [i for i, label in enumerate(labels) if label in rows]
        picked = [rows[labels[i]] for i in xs]
        floor = [max(r["ms"]["gemm"], r["ms"]["copy"], r["ms"]["sqrt"]) for r in picked]
        ax.plot(xs, [r["ms"]["cgdn"] / f for r, f in zip(picked, floor)], "o-",
                label=f"cgdn, {n_threads} thread(s)")
        if all("torch" in r["ms"] for r in picked):
            ax.plot(xs, [r["ms"]["torch"] / f for r, f in zip(picked, floor)], "s--",
                    label=f"PyTorch, {n_threads} thread(s)")
        if all("numpy" in r["ms"] for r in picked):
            ax.plot(xs, [r["ms"]["numpy"] / f for r, f in zip(picked, floor)], "^:",
                    label=f"NumPy, {n_threads} thread(s)")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("shape (N,H,W,C)")
    ax.set_ylabel("time / max(GEMM, copy, sqrt)")
    ax.set_title(f"{'IGDN' if args.inverse else 'GDN'} {args.dtype} {args.data_format}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"plot written to {args.plot}")


