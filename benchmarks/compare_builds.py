"""Two builds of cgdn side by side: is a change faster or slower, and where?

Each build is a source folder with its extensions built in place (``python setup.py
build_ext --inplace``), e.g. a ``git worktree`` of the commit before the change and the
working copy. The script runs the same shapes in child processes that import one build or
the other (``PYTHONPATH``), alternating the order every round; a child times each shape
``--calls`` times and keeps the fastest call (what the code costs, least disturbed by
other processes). A row gives each build's median over the rounds and the median of the
per-round ratios new/old, the figure to quote: both builds saw the same moment of a
noisy machine.

    git worktree add /tmp/old HEAD~1 && (cd /tmp/old && python setup.py build_ext --inplace)
    python benchmarks/compare_builds.py /tmp/old .                  # the default shapes
    python benchmarks/compare_builds.py /tmp/old . --rounds 16 --shapes 1,8,8,192 1,4,4,64

Shapes are channels_last unless ``--channels-first``; float32, GDN (alpha 2, epsilon 0.5)
and simplified GDN (alpha 1, epsilon 1), ``out=``, one thread unless ``--threads``.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DEFAULT_SHAPES = ["1,128,128,1", "1,128,128,3", "1,128,128,8", "1,128,128,16",
                  "1,128,128,32", "1,128,128,64", "1,128,128,192", "1,8,8,192", "1,4,4,64"]


def child(config):
    """Runs in the child: time every case with the cgdn found on PYTHONPATH."""
    import cgdn
    rng = np.random.default_rng(0)
    result = []
    for shape, data_format, alpha, epsilon in config["cases"]:
        n_ch = shape[-1] if data_format == "channels_last" else shape[1]
        x = rng.standard_normal(shape).astype(np.float32)
        beta = np.ones(n_ch, np.float32)
        gamma = (0.1 * np.eye(n_ch) + 0.01).astype(np.float32)
        out = np.empty_like(x)
        kw = dict(alpha=alpha, epsilon=epsilon, data_format=data_format, out=out,
                  num_threads=config["threads"])
        cgdn.apply_gdn(x, beta, gamma, **kw)
        best = float("inf")
        for _ in range(config["calls"]):
            start = time.perf_counter()
            cgdn.apply_gdn(x, beta, gamma, **kw)
            best = min(best, time.perf_counter() - start)
        result.append(best)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="source folder of the build to compare against")
    parser.add_argument("new", help="source folder of the build under test")
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES,
                        help="shapes as comma-separated sizes (default: a channel sweep)")
    parser.add_argument("--channels-first", action="store_true",
                        help="the shapes are (N, C, H, W) channels_first arrays")
    parser.add_argument("--rounds", type=int, default=12, help="rounds (default 12)")
    parser.add_argument("--calls", type=int, default=25,
                        help="calls per shape and round; the fastest is kept (default 25)")
    parser.add_argument("--threads", type=int, default=1, help="num_threads (default 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.rounds < 1 or args.calls < 1 or args.threads < 1:
        parser.error("--rounds, --calls and --threads must be positive")
    data_format = "channels_first" if args.channels_first else "channels_last"
    cases = [[[int(n) for n in shape.split(",")], data_format, alpha, epsilon]
             for shape in args.shapes for alpha, epsilon in ((2.0, 0.5), (1.0, 1.0))]
    config = json.dumps({"cases": cases, "calls": args.calls, "threads": args.threads})
    env = dict(os.environ)
    builds = [os.path.abspath(args.old), os.path.abspath(args.new)]
    times = {b: [] for b in builds}
    for r in range(args.rounds):
        for build in builds if r % 2 == 0 else builds[::-1]:
            run = subprocess.run([sys.executable, os.path.abspath(__file__), "x", "x",
                                  "--child", config], env=dict(env, PYTHONPATH=build),
                                 cwd=os.path.dirname(build), capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"the child importing {build} failed:\n{run.stderr}")
            times[build].append(json.loads(run.stdout))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    old, new = (np.array(times[b]) for b in builds)
    print(f"{args.rounds} rounds, fastest of {args.calls} calls each, float32, "
          f"{data_format}, {args.threads} thread(s)")
    print(f"{'shape':>20} {'alpha,eps':>9} {'old ms':>9} {'new ms':>9} {'new/old':>8}")
    for k, (shape, _, alpha, epsilon) in enumerate(cases):
        ratio = np.median(new[:, k] / old[:, k])
        print(f"{','.join(map(str, shape)):>20} {alpha:4.0f},{epsilon:<4.1f} "
              f"{np.median(old[:, k]) * 1e3:9.4f} {np.median(new[:, k]) * 1e3:9.4f} "
              f"{ratio:8.3f}")


if __name__ == "__main__":
    main()
