"""Benchmark cgdn against the NumPy reference, the GEMM/copy/sqrt floors and PyTorch.

Usage: python benchmarks/bench_gdn.py [--shapes N,H,W,C ...] [--dtype float32|float64]
       [--data-format channels_last|channels_first] [--inverse] [--threads 1 2]
       [--quick] [--json PATH] [--plot PNG]

The benchmark itself lives in cgdn/_bench.py so that ``python -m cgdn bench`` can run it
from an installed package; this script is the entry point for full runs.
"""
import sys

from cgdn._bench import main

if __name__ == "__main__":
    main(prog=f"python {sys.argv[0]}")
