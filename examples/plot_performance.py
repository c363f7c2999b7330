"""Draw the performance figure from the committed benchmark results: the times of cgdn,
PyTorch's GDN and the floor max(GEMM, copy, sqrt) against the channel count, one panel
per instruction set, layout and thread count (lower is better).

Run: python examples/plot_performance.py [--results benchmarks/results/channel_sweep_float32.json]
                                         [--figure benchmarks/gdn_channel_sweep.png]
                                         [--machine "the machine, for the title"]
(needs matplotlib; the results come from benchmarks/bench_gdn.py --json)
"""
import argparse
import os

from cgdn import _bench

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join(
        HERE, "..", "benchmarks", "results", "channel_sweep_float32.json"))
    parser.add_argument("--figure", default="gdn_channel_sweep.png")
    parser.add_argument("--machine", help="the machine the results are from (plot title)")
    args = parser.parse_args()
    _bench.main(["--replot", args.results, "--plot", args.figure]
                + (["--machine", args.machine] if args.machine else []))
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
