"""GDN on a busy machine: cgdn and PyTorch while other processes keep the cores busy.

For each load (0, 1, 2 competing processes, each a Python loop that never sleeps, started
and stopped by this script), each shape and each thread setting (1 thread, the default,
and 2 threads), every call is timed on its own; a row gives the median and the 90th
percentile of the calls, interleaved in rounds so that all settings see the same load.
cgdn runs ``apply_gdn(x, beta, gamma, out=out)`` on channels_last float32 input; PyTorch
(if importable) runs GDN as ``conv2d`` 1x1 on the NCHW tensor (CompressAI's formulation),
with ``torch.set_num_threads`` set to the same count (its default: all cores).

    python benchmarks/bench_busy.py                       # the channel sweep, loads 0-2
    python benchmarks/bench_busy.py --channels 1 16 --loads 1 --calls 50

The figure that matters is ``default/1``, the ratio of the means: what a call with the
default thread setting costs against one thread under the same load (cgdn's target: at
most 1.5 at every size).
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

import cgdn
from cgdn._bench import machine_name

CHANNELS = (1, 2, 3, 4, 8, 16, 32, 64, 128)


def start_load(n):
    """``n`` processes that keep one core busy each until stopped."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_load(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def _torch_gdn(x, beta, gamma):
    """PyTorch's GDN as CompressAI computes it (conv2d 1x1 on NCHW), or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    c = x.shape[-1]
    nchw = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, *x.shape[1:]).transpose(0, 3, 1, 2)))
    weight = torch.from_numpy(np.ascontiguousarray(gamma.T)).reshape(c, c, 1, 1)
    tbeta = torch.from_numpy(beta)

    def run(n_threads):
        with torch.no_grad():
            return nchw * torch.rsqrt(F.conv2d(nchw * nchw, weight, tbeta))

    def timed(n_threads, calls, min_time):
        # torch.set_num_threads sets the OpenMP default of the calling thread, which
        # cgdn's default follows when both load the same libgomp: restore it after
        before = torch.get_num_threads()
        torch.set_num_threads(n_threads)
        try:
            return time_calls(lambda: run(n_threads), calls, min_time)
        finally:
            torch.set_num_threads(before)
    return timed


def time_calls(fn, calls, min_time):
    """Per-call times (s) of ``calls`` calls at least, and ``min_time`` seconds at least."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < calls or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", nargs="+", type=int, default=None,
                        help="(1,256,256,C) shapes for these C, after (20000,1,1,2) "
                             f"(default {' '.join(map(str, CHANNELS))})")
    parser.add_argument("--loads", nargs="+", type=int, default=[0, 1, 2],
                        help="numbers of competing busy processes (default 0 1 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per block at least")
    parser.add_argument("--min-time", type=float, default=0.1,
                        help="seconds of calls per block at least (default 0.1)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    args = parser.parse_args(argv)
    shapes = [(20000, 1, 1, 2)] + [(1, 256, 256, c) for c in args.channels or CHANNELS]
    default = cgdn.show_config(mode="dicts")["max_threads"]
    settings = [("1", 1), ("default", None), ("2", 2)]
    print(f"cgdn {cgdn.__version__} ({cgdn.show_config(mode='dicts')['isa']}), "
          f"{machine_name()}, {os.cpu_count()} CPUs, default threads {default}; float32 "
          f"channels_last GDN, out= given; mean (p90) of every call's time in ms over "
          f"{args.rounds} interleaved rounds of >= {args.calls} calls and "
          f">= {args.min_time:g} s per setting")
    print(f"command: python {' '.join(sys.argv)}\n")
    head = ["load", "shape", "cgdn 1", "cgdn default", "cgdn 2", "cgdn default/1"]
    with_torch = not args.no_torch and _torch_gdn(np.ones((1, 1, 1, 1), np.float32),
                                                  np.ones(1, np.float32),
                                                  np.ones((1, 1), np.float32)) is not None
    if with_torch:
        head += ["torch 1", "torch default", "torch default/1"]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    rng = np.random.default_rng(0)
    for load in args.loads:
        procs = start_load(load)
        try:
            time.sleep(0.5)
            for shape in shapes:
                c = shape[-1]
                x = rng.standard_normal(shape).astype(np.float32)
                beta = rng.uniform(0.5, 1.5, c).astype(np.float32)
                gamma = rng.uniform(0, 0.1, (c, c)).astype(np.float32)
                out = np.empty_like(x)
                torch_run = _torch_gdn(x, beta, gamma) if with_torch else None
                times = {}
                for _ in range(args.rounds):
                    for label, n in settings:
                        times.setdefault(("cgdn", label), []).extend(time_calls(
                            lambda: cgdn.apply_gdn(x, beta, gamma, out=out, num_threads=n),
                            args.calls, args.min_time))
                        if torch_run is not None and label != "2":
                            t = n if n is not None else default
                            times.setdefault(("torch", label), []).extend(
                                torch_run(t, args.calls, args.min_time))
                med = {k: 1e3 * float(np.mean(v)) for k, v in times.items()}
                p90 = {k: 1e3 * float(np.percentile(v, 90)) for k, v in times.items()}
                cells = [str(load), ",".join(map(str, shape))]
                cells += [f"{med['cgdn', s]:.3f} ({p90['cgdn', s]:.3f})"
                          for s in ("1", "default", "2")]
                cells.append(f"{med['cgdn', 'default'] / med['cgdn', '1']:.2f}")
                if torch_run is not None:
                    cells += [f"{med['torch', s]:.3f} ({p90['torch', s]:.3f})"
                              for s in ("1", "default")]
                    cells.append(f"{med['torch', 'default'] / med['torch', '1']:.2f}")
                print("| " + " | ".join(cells) + " |", flush=True)
        finally:
            stop_load(procs)


if __name__ == "__main__":
    main()
