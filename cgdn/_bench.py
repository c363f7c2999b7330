"""Benchmark cgdn against its floors and peers, interleaved in one process.

For each shape, layout and thread count it times, in interleaved rounds:

- ``cgdn``: ``cgdn.apply_gdn(x, beta, gamma, out=out)``;
- ``numpy``: the plain NumPy reference (``cgdn._reference.reference_gdn`` in the input
  dtype), unless ``--no-numpy``;
- ``gemm``: the bare product ``(P, C) @ (C, C)`` into a preallocated array with NumPy's
  BLAS (OpenBLAS in NumPy's wheels), limited to the same thread count;
- ``mkl``: the same product with PyTorch's ``torch.mm(out=)`` (MKL in its x86 wheels),
  when torch is importable. The GEMM floor is the faster of the two;
- ``copy`` and ``sqrt``: ``np.copyto`` and ``np.sqrt(out=)`` of the same array, split over
  the same number of Python threads: the memory floor (``mem``) for few channels;
- ``torch``: GDN in PyTorch, the faster of ``conv2d`` 1x1 on NCHW and ``addmm`` on (P, C),
  when torch is importable.

``--isa avx512 avx2 baseline`` runs everything once per kernel variant, each in a child
process with ``CGDN_ISA`` set. A child for another instruction set than the CPU's best
also makes the BLAS libraries and PyTorch's own kernels use that instruction set
(``OPENBLAS_CORETYPE``, ``MKL_ENABLE_INSTRUCTIONS``; oneDNN's ``ONEDNN_MAX_CPU_ISA``, which
PyTorch's ``conv2d`` runs on, and ``ATEN_CPU_CAPABILITY`` for its elementwise operations):
the floors and PyTorch are then those of a machine with that instruction set, which is
what the variant stands for.

It prints a Markdown table of medians (ms) and ratios (each the median of the rounds'
ratios), ``threadpool_info()`` and its own command line. ``python benchmarks/bench_gdn.py
--help`` lists the options; ``python -m cgdn bench`` runs the quick form with a progress
display.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import cgdn
from cgdn import _isa
from cgdn._reference import reference_gdn

DEFAULT_SHAPES = [
    "1,256,256,3", "1,256,256,16", "1,128,128,64", "1,128,128,128", "1,128,128,192",
    "8,64,64,192", "1,64,64,320", "1,384,256,192",
]
QUICK_SHAPES = ["1,128,128,3", "1,128,128,16", "1,64,64,64", "1,64,64,192"]
# The channel counts of --sweep-channels A:B that lie in [A, B], at (1, 256, 256, C).
SWEEP_CHANNELS = [1, 2, 3, 4, 6, 8, 9, 12, 16, 17, 24, 32, 40, 48, 56, 64, 96, 128]

# What a child process for each instruction set tells the BLAS libraries and PyTorch
# (oneDNN runs its conv2d, ATen its elementwise operations), so that the floors and
# PyTorch's GDN are those of a CPU with that instruction set (and no better). Without the
# last two, PyTorch's conv2d in an "avx2" child on an AVX-512 CPU ran oneDNN's AVX-512
# kernels.
_BLAS_ENV = {
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "baseline": {"OPENBLAS_CORETYPE": "Prescott", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
}
_ISA_RANK = {"baseline": 0, "neon": 0, "avx2": 1, "avx512": 2}

NAMES = ("cgdn", "numpy", "torch", "gemm", "mkl", "copy", "sqrt")
RATIO_NAMES = ("cgdn/floor", "cgdn/mem", "numpy/cgdn", "torch/cgdn")


def parse_shape(text):
    shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}: use N,H,W,C (channels last)")
    return shape


def parse_sweep(text):
    """'A:B' -> the SWEEP_CHANNELS within [A, B]; 'A,B,C' -> those channel counts."""
    try:
        if ":" in text:
            low, high = (int(v) for v in text.split(":"))
            channels = [c for c in SWEEP_CHANNELS if low <= c <= high]
        else:
            channels = [int(v) for v in text.split(",")]
    except ValueError:
        channels = []
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"bad channel sweep {text!r}: use A:B or C1,C2,...")
    return [(1, 256, 256, c) for c in channels]


def _threaded(fn_chunk, n_threads, pool):
    """Run fn_chunk(i, n) for i in range(n) on n Python threads (NumPy drops the GIL)."""
    if n_threads == 1:
        return lambda: fn_chunk(0, 1)
    return lambda: list(pool.map(lambda i: fn_chunk(i, n_threads), range(n_threads)))


def _chunks(a, i, n):
    flat = a.reshape(-1)
    step = -(-flat.size // n)
    return flat[i * step:(i + 1) * step]


def _empty_apart(like):
    """An empty array like ``like`` whose data starts half a page after ``like``'s modulo
    4096: a copy between addresses equal modulo 4096 (4K aliasing) can run 10x slower."""
    nbytes = like.nbytes
    buf = np.empty(nbytes + 8192, dtype=np.uint8)
    shift = (like.ctypes.data + 2048 - buf.ctypes.data) % 4096
    return buf[shift:shift + nbytes].view(like.dtype).reshape(like.shape)


def make_contenders(x, beta, gamma, args, fmt, n_threads, pool):
    """name -> (callable, kind) for one shape, layout and thread count."""
    c = x.shape[-1] if fmt == "channels_last" else x.shape[1]
    out = _empty_apart(x)
    mat = x.reshape(-1, c) if fmt == "channels_last" else np.ascontiguousarray(
        np.moveaxis(x, 1, -1).reshape(-1, c))
    gemm_out = _empty_apart(mat)
    scratch = _empty_apart(x)
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
    contenders.update(_torch_contenders(x, mat, beta, gamma, args, fmt, n_threads))
    return contenders


def _torch_contenders(x, mat, beta, gamma, args, fmt, n_threads):
    """PyTorch's GDN (the faster of conv2d on NCHW and addmm on (P, C)) and its GEMM."""
    if args.no_torch:
        return {}
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    c = beta.shape[0]
    tbeta, tgamma = torch.from_numpy(beta), torch.from_numpy(gamma)
    tmat = torch.from_numpy(mat)
    tout = torch.empty(mat.shape, dtype=tmat.dtype)
    nchw = torch.from_numpy(np.ascontiguousarray(
        x if fmt == "channels_first" else np.moveaxis(x, -1, 1)))
    weight = torch.from_numpy(np.ascontiguousarray(gamma.T)).reshape(c, c, 1, 1)

    def root(t):
        return torch.sqrt(t) if args.inverse else torch.rsqrt(t)

    def gdn_conv():
        norm = F.conv2d(nchw * nchw, weight, tbeta) if args.alpha == 2 else F.conv2d(
            nchw.abs() ** args.alpha, weight, tbeta)
        return nchw * (root(norm) if args.epsilon == 0.5 else norm ** (
            args.epsilon if args.inverse else -args.epsilon))

    def gdn_addmm():
        pooled = tmat * tmat if args.alpha == 2 else tmat.abs() ** args.alpha
        norm = torch.addmm(tbeta, pooled, tgamma)
        return tmat * (root(norm) if args.epsilon == 0.5 else norm ** (
            args.epsilon if args.inverse else -args.epsilon))

    def in_torch(fn):
        def call():
            torch.set_num_threads(n_threads)
            with torch.no_grad():
                fn()
        return call

    contenders = {"mkl": (in_torch(lambda: torch.mm(tmat, tgamma, out=tout)), "torch")}
    if x.ndim == 4:
        contenders["torch_conv"] = (in_torch(gdn_conv), "torch")
    contenders["torch_addmm"] = (in_torch(gdn_addmm), "torch")
    return contenders


def time_block(fn, repeats, min_time=0.0):
    """The best time of ``repeats`` calls, or of as many as fill ``min_time`` seconds
    (at most 1000), after one warm-up call."""
    fn()  # warm-up inside the block: wakes OpenMP / BLAS workers
    times = []
    began = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - began < min_time
                                   and len(times) < 1000):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_shape(shape, args, fmt, n_threads, pool):
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    if fmt == "channels_first":
        shape = (shape[0], shape[-1]) + tuple(shape[1:-1])
    x = rng.standard_normal(shape).astype(dtype)
    c = shape[-1] if fmt == "channels_last" else shape[1]
    beta = rng.uniform(0.5, 1.5, c).astype(dtype)
    gamma = (0.1 * np.eye(c) + rng.uniform(0, 0.01, (c, c))).astype(dtype)
    contenders = make_contenders(x, beta, gamma, args, fmt, n_threads, pool)
    rounds = []
    for _ in range(args.rounds):
        times = {}
        for name, (fn, kind) in contenders.items():
            if kind == "blas":
                with threadpool_limits(n_threads, user_api="blas"):
                    times[name] = time_block(fn, args.repeats, args.min_time)
                time.sleep(args.pause)  # let OpenBLAS workers park before the next block
            else:
                times[name] = time_block(fn, args.repeats, args.min_time)
                if kind == "torch":
                    time.sleep(args.pause)
        rounds.append(_merge_torch({name: 1e3 * t for name, t in times.items()}))
    row = {name: float(np.median([r[name] for r in rounds])) for name in rounds[0]}
    return row, rounds


def _merge_torch(row):
    """PyTorch's GDN is the faster of its two forms."""
    torch_gdn = [row.pop(k) for k in ("torch_conv", "torch_addmm") if k in row]
    if torch_gdn:
        row["torch"] = min(torch_gdn)
    return row


def ratios(row, rounds=None):
    """The ratios of a row of times. With ``rounds`` (the times of each round), each ratio
    is the median over the rounds of that round's ratio: contenders timed minutes apart
    on a shared machine can see its speed change, contenders timed in one round much
    less."""
    if rounds:
        per_round = [ratios(r) for r in rounds]
        return {name: float(np.median([r[name] for r in per_round])) for name in per_round[0]}
    floor = min(row["gemm"], row.get("mkl", np.inf))
    result = {
        "cgdn/floor": row["cgdn"] / floor,
        "cgdn/mem": row["cgdn"] / max(row["copy"], row["sqrt"]),
    }
    if "numpy" in row:
        result["numpy/cgdn"] = row["numpy"] / row["cgdn"]
    if "torch" in row:
        result["torch/cgdn"] = row["torch"] / row["cgdn"]
    return result


def run_here(shapes, args):
    """All shapes x layouts x thread counts on the kernel variant in use, in-process."""
    results = []
    total = len(shapes) * len(args.data_format) * len(args.threads)
    k = 0
    with ThreadPoolExecutor(max_workers=max(args.threads)) as pool:
        for fmt in args.data_format:
            for shape in shapes:
                for n_threads in args.threads:
                    k += 1
                    if args.progress:
                        print(f"[{k}/{total}] {_isa.kernels.ISA} {fmt} shape {shape} "
                              f"threads {n_threads} ...", file=sys.stderr, flush=True)
                    row, rounds = bench_shape(shape, args, fmt, n_threads, pool)
                    results.append({"isa": _isa.kernels.ISA, "data_format": fmt,
                                    "shape": list(shape), "threads": n_threads, "ms": row,
                                    "ratios": ratios(row, rounds), "rounds": rounds})
    return results


def run_children(isas, argv):
    """Run this benchmark once per instruction set, each in a child process."""
    best = _isa.best()
    results = []
    for isa in isas:
        env = dict(os.environ, CGDN_ISA=isa)
        if _ISA_RANK.get(isa, 0) < _ISA_RANK.get(best, 0):
            env.update(_BLAS_ENV.get(isa, {}))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "child.json")
            child = [sys.executable, "-m", "cgdn._bench", *argv, "--json", path, "--child"]
            subprocess.run(child, env=env, check=True, stdout=subprocess.DEVNULL)
            with open(path) as f:
                results += json.load(f)["results"]
    return results


def print_table(results, args, command):
    names = [n for n in NAMES if any(n in r["ms"] for r in results)]
    ratio_names = [n for n in RATIO_NAMES if any(n in r["ratios"] for r in results)]
    print(f"cgdn {cgdn.__version__}, {args.dtype}, {'IGDN' if args.inverse else 'GDN'}, "
          f"alpha={args.alpha:g}, epsilon={args.epsilon:g}; median of {args.rounds} "
          f"interleaved rounds, each the best of at least {args.repeats} calls and "
          f"{1e3 * args.min_time:g} ms of calls; times in ms; "
          f"floor = min(gemm, mkl); mem = max(copy, sqrt); each ratio is the median of "
          f"the rounds' ratios (contenders timed in the same round)\n")
    head = ["isa", "layout", "shape (N,H,W,C)", "threads"] + names + ratio_names
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    for r in results:
        cells = [r["isa"], r["data_format"], ",".join(map(str, r["shape"])), str(r["threads"])]
        cells += [f"{r['ms'][n]:.3f}" if n in r["ms"] else "-" for n in names]
        cells += [f"{r['ratios'][n]:.2f}" if n in r["ratios"] else "-" for n in ratio_names]
        print("| " + " | ".join(cells) + " |")
    print("\nthreadpool_info():")
    for pool_info in threadpool_info():
        print(f"  {pool_info.get('user_api')}: {pool_info.get('internal_api')} "
              f"{pool_info.get('version')} {pool_info.get('architecture', '')} "
              f"threads={pool_info.get('num_threads')}")
    print(f"\ncommand: {command}")


def _number(kind, low, strict):
    """An argparse type: a ``kind`` (int or float) > ``low`` (>= with ``strict`` False)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value > low if strict else value >= low) or value != value:
            raise argparse.ArgumentTypeError(
                f"expected a value {'>' if strict else '>='} {low}, got {text!r}")
        return value
    return parse


_POSITIVE_INT = _number(int, 0, True)
_POSITIVE = _number(float, 0.0, True)


def build_parser(prog=None, quick=False):
    """The benchmark's options. ``quick``: the form ``python -m cgdn bench`` runs, where
    the quick shapes and the progress display are always on (so not options)."""
    description = __doc__.splitlines()[0]
    if quick:
        description += (" Quick form: small shapes, 3 rounds, progress on stderr; "
                        "python benchmarks/bench_gdn.py runs the full one.")
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=None,
                        help="N,H,W,C shapes (channels last order; permuted for channels_first)")
    parser.add_argument("--sweep-channels", type=parse_sweep, metavar="A:B",
                        help="(1,256,256,C) for the sweep's channel counts C in [A, B] "
                             f"(of {SWEEP_CHANNELS}), or a list C1,C2,...")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="dtype of the inputs and parameters (default float32)")
    parser.add_argument("--data-format", nargs="+", choices=["channels_last", "channels_first"],
                        default=["channels_last"],
                        help="layouts to run, one row each (default channels_last)")
    parser.add_argument("--isa", nargs="+", metavar="ISA",
                        help="kernel variants to run, each in a child process "
                             f"(runnable here: {' '.join(_isa.available())})")
    parser.add_argument("--inverse", action="store_true",
                        help="time IGDN (x * pool**epsilon) instead of GDN")
    parser.add_argument("--alpha", type=_POSITIVE, default=2.0,
                        help="exponent of |x| in the pool, > 0 (default 2)")
    parser.add_argument("--epsilon", type=_POSITIVE, default=0.5,
                        help="exponent of the pool, > 0 (default 0.5)")
    parser.add_argument("--threads", nargs="+", type=_POSITIVE_INT, default=[1, 2],
                        metavar="N", help="thread counts to run, one row each (default 1 2)")
    parser.add_argument("--rounds", type=_POSITIVE_INT, default=7,
                        help="interleaved rounds (median; default 7, 3 in the quick form)")
    parser.add_argument("--repeats", type=_POSITIVE_INT, default=5,
                        help="calls per block at least (the best is kept)")
    parser.add_argument("--min-time", type=_number(float, 0.0, False), default=0.02,
                        help="seconds of calls per block at least: calls of a few "
                             "microseconds are timed many times (default 0.02)")
    parser.add_argument("--pause", type=_number(float, 0.0, False), default=0.25,
                        help="seconds to sleep after each BLAS or PyTorch block")
    if not quick:
        parser.add_argument("--quick", action="store_true", help="small shapes, 3 rounds")
        parser.add_argument("--progress", action="store_true",
                            help="print progress to stderr")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--plot", metavar="PNG",
                        help="plot the times of cgdn, PyTorch and the floor (matplotlib)")
    parser.add_argument("--replot", metavar="JSON",
                        help="only redraw --plot from the results of an earlier --json run")
    parser.add_argument("--machine", metavar="NAME",
                        help="the machine named in the plot's title (default: this CPU)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    if quick:
        parser.set_defaults(quick=True, progress=True)
    return parser


def main(argv=None, prog=None, quick=False):
    """Run the benchmark with command-line arguments ``argv`` (``quick``: the form of
    ``python -m cgdn bench``, see :func:`build_parser`)."""
    parser = build_parser(prog, quick)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            saved = json.load(f)
        _plot(saved["results"], args.plot or "benchmark.png", saved["args"],
              args.machine or saved.get("machine"))
        return saved["results"]
    unknown = [isa for isa in args.isa or [] if isa not in _isa.available()]
    if unknown:
        parser.error(f"--isa: {' '.join(unknown)} cannot run on this CPU; "
                     f"choose from {' '.join(_isa.available())}")
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.pause = min(args.pause, 0.05)
    shapes = args.shapes or args.sweep_channels or [
        parse_shape(s) for s in (QUICK_SHAPES if args.quick else DEFAULT_SHAPES)]
    program = prog or f"python {sys.argv[0]}"
    command = " ".join([program, *(shlex.quote(a) for a in argv)])

    if args.isa and not args.child:
        child_argv = (["--quick"] if quick else []) + _without(
            argv, {"--isa": True, "--json": True, "--plot": True, "--progress": False})
        results = run_children(args.isa, child_argv)
    else:
        results = run_here(shapes, args)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, "machine": machine_name(), "args": vars(args),
                       "results": results, "threadpool_info": threadpool_info()}, f,
                      indent=1, default=str)
    if args.child:
        return results
    print_table(results, args, command)
    if args.plot:
        _plot(results, args.plot, vars(args))
    return results


def _without(argv, options):
    """argv without the given options (True: the option takes values until the next one)."""
    kept, skipping = [], False
    for a in argv:
        if a.startswith("--"):
            skipping = a in options and options[a]
            if a in options:
                continue
        elif skipping:
            continue
        kept.append(a)
    return kept


def machine_name():
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _floor(r):
    return max(min(r["ms"]["gemm"], r["ms"].get("mkl", np.inf)), r["ms"]["copy"],
               r["ms"]["sqrt"])


def _plot(results, path, args, machine=None):
    """Times against the channel count (sweeps) or the shape: one panel per instruction
    set, layout and thread count, each with cgdn, PyTorch's GDN (when measured) and the
    floor max(GEMM, copy, sqrt), in ms on a log axis (lower is better)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written", file=sys.stderr)
        return
    sweep = len({tuple(r["shape"][:-1]) for r in results}) == 1
    labels = []
    for r in results:
        label = r["shape"][-1] if sweep else ",".join(map(str, r["shape"]))
        if label not in labels:
            labels.append(label)
    groups = sorted({(r.get("isa", "?"), r.get("data_format", "?"), r["threads"])
                     for r in results}, key=lambda g: (-_ISA_RANK.get(g[0], 0), g[1], g[2]))
    n_cols = 2 if len(groups) > 1 else 1
    n_rows = -(-len(groups) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows + 0.6),
                             squeeze=False, sharey=True)
    for ax, (isa, fmt, n_threads) in zip(axes.flat, groups):
        rows = [r for r in results if (r.get("isa", "?"), r.get("data_format", "?"),
                                       r["threads"]) == (isa, fmt, n_threads)]
        xs = [r["shape"][-1] if sweep else labels.index(
            ",".join(map(str, r["shape"]))) for r in rows]
        ax.plot(xs, [r["ms"]["cgdn"] for r in rows], "o-", ms=3, color="C0", label="cgdn")
        if all("torch" in r["ms"] for r in rows):
            ax.plot(xs, [r["ms"]["torch"] for r in rows], "s-", ms=3, color="C3",
                    label="PyTorch GDN")
        ax.plot(xs, [_floor(r) for r in rows], "--", color="gray",
                label="floor: max(GEMM, copy, sqrt)")
        ax.set_yscale("log")
        ax.set_title(f"{isa}, {fmt}, {n_threads} thread{'s' if n_threads > 1 else ''}",
                     fontsize=9)
        if sweep:
            ax.set_xlabel("channels C at (1, 256, 256, C)", fontsize=8)
        else:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("time, ms (lower is better)", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    kind = "IGDN" if args.get("inverse") else "GDN"
    fig.suptitle(f"{kind} {args.get('dtype', 'float32')} on {machine or machine_name()}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main(prog="python -m cgdn._bench")
