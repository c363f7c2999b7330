"""Command line: python -m cgdn {info,demo,bench}."""
import argparse
import sys
import time

import numpy as np

import cgdn
from cgdn._reference import reference_gdn

DEMO_SHAPE = (2, 96, 128, 64)  # (N, H, W, C), channels_last, float32


def demo_input(shape=DEMO_SHAPE, seed=0):
    """A deterministic image-like batch: smooth 3-channel scenes lifted to C channels.

    Each image is a sum of oriented sinusoids, a gradient and a disc with an edge (no
    download); a fixed random 3 -> C projection and a ReLU-free tanh mimic the output of
    a first convolution layer.
    """
    n, h, w, c = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    images = []
    for k in range(n):
        planes = []
        for ch in range(3):
            angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 9)
            wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
            disc = ((xx - 0.3 - 0.4 * k / max(n, 1)) ** 2 + (yy - 0.5) ** 2 < 0.05) * 1.5
            planes.append(wave + (ch - 1) * (xx - yy) + disc)
        images.append(np.stack(planes, axis=-1))
    rgb = np.stack(images)                                   # (n, h, w, 3)
    lift = rng.standard_normal((3, c)) * 1.5
    return np.tanh(rgb @ lift).astype(np.float32) * 4.0     # (n, h, w, c)


def _best_ms(fn, calls=3):
    """The best of ``calls`` timed calls, in ms (one call's noise is not the function's)."""
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def _interleaved_ms(contenders, rounds):
    """``{name: [ms per round]}``: each round times every contender once (best of 3
    calls), so all of them see the same machine."""
    for fn in contenders.values():
        fn()   # warm up (also wakes the worker threads)
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(_best_ms(fn))
    return times


def _demo_case(label, x, beta, gamma, repeats):
    y = cgdn.apply_gdn(x, beta, gamma)
    z = cgdn.apply_gdn(y, beta, gamma, inverse=True)
    ref_y = reference_gdn(x, beta, gamma)
    ref_z = reference_gdn(y, beta, gamma, inverse=True)
    err_y = float(np.max(np.abs(y - ref_y) / (np.abs(ref_y) + 1e-6)))
    err_z = float(np.max(np.abs(z - ref_z) / (np.abs(ref_z) + 1e-6)))
    agree = np.allclose(y, ref_y, rtol=1e-5, atol=1e-6) and np.allclose(
        z, ref_z, rtol=1e-5, atol=1e-6
    )
    one_step = float(np.max(np.abs(z - x)) / np.max(np.abs(x)))
    exact = float(np.max(np.abs(cgdn.gdn_inverse(y, beta, gamma) - x)) / np.max(np.abs(x)))
    times = _interleaved_ms({
        "cgdn": lambda: cgdn.apply_gdn(x, beta, gamma),
        "numpy": lambda: reference_gdn(x, beta, gamma, dtype=np.float32)}, repeats)
    ratios = np.array(times["numpy"]) / np.array(times["cgdn"])
    t_cgdn, t_numpy = float(np.median(times["cgdn"])), float(np.median(times["numpy"]))
    low, high = float(ratios.min()), float(ratios.max())
    print(f"[{label}]")
    print(f"  GDN  -> {y.shape} {y.dtype}; max rel. diff to NumPy float64 reference {err_y:.2e}")
    print(f"  IGDN -> {z.shape} {z.dtype}; max rel. diff to NumPy float64 reference {err_z:.2e}")
    print(f"  back to x, max abs error / max |x|: gdn_inverse(GDN(x)) {exact:.1e} (exact "
          f"inverse); IGDN(GDN(x)) {one_step:.1e} (IGDN is one fixed-point step, not the "
          f"inverse)")
    print(f"  GDN time, median of {repeats} interleaved rounds: cgdn {t_cgdn:.2f} ms, NumPy "
          f"reference (float32) {t_numpy:.2f} ms; speed-up {float(np.median(ratios)):.1f}x "
          f"(rounds {low:.1f}x-{high:.1f}x)")
    if high > 2 * low:
        print("  (the rounds differ by more than 2x: other work on this machine disturbed "
              "the timing; run again on a quiet machine for a figure to rely on)")
    print(f"  agreement with reference (rtol 1e-5, atol 1e-6): {'OK' if agree else 'FAILED'}")
    return agree


def demo(repeats=7):
    """Run GDN then IGDN on the embedded input; return True if cgdn agrees with NumPy."""
    x = demo_input()
    c = x.shape[-1]
    print(f"cgdn {cgdn.__version__} demo: input {x.shape} {x.dtype} (channels_last), "
          f"threads {cgdn.show_config(mode='dicts')['max_threads']}")
    rng = np.random.default_rng(1)
    default = (np.ones(c, np.float32), 0.1 * np.eye(c, dtype=np.float32))
    trained = (rng.uniform(0.2, 2.0, c).astype(np.float32),
               (rng.uniform(0, 0.05, (c, c)) * (rng.random((c, c)) < 0.3)
                + np.diag(rng.uniform(0.05, 0.5, c))).astype(np.float32))
    ok = _demo_case("default parameters: beta = 1, gamma = 0.1 I", x, *default, repeats)
    ok &= _demo_case("non-trivial parameters: random beta, sparse non-symmetric gamma",
                     x, *trained, repeats)
    print("demo:", "OK" if ok else "FAILED")
    return ok


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cgdn",
        description="cgdn's command line: the build and runtime configuration, a demo, "
                    "a quick benchmark. 'python -m cgdn bench --help' lists the benchmark's "
                    "options.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print cgdn.show_config()")
    demo_parser = sub.add_parser("demo", help="GDN/IGDN on an embedded image batch")
    demo_parser.add_argument("--repeats", type=_positive_int, default=7,
                             help="interleaved timing rounds (median; default 7)")
    sub.add_parser("bench", help="quick benchmark against the floors and PyTorch "
                                 "(options: python -m cgdn bench --help)", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from cgdn._bench import main as bench_main

        bench_main(rest, prog="python -m cgdn bench", quick=True)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "info":
        cgdn.show_config()
        return 0
    return 0 if demo(repeats=args.repeats) else 1


if __name__ == "__main__":
    sys.exit(main())
