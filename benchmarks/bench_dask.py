"""cgdn on Dask: a large input on disk, chunk by chunk, against one in-memory call.

Writes a float32 ``.npy`` of ``--shape`` (1 GiB by default) to ``--dir``, then times
GDN of it, reading from and writing to ``.npy`` memory maps on disk:

- one in-memory call: the input loaded into memory first (not timed), then
  ``cgdn.apply_gdn`` with all threads;
- Dask's threaded scheduler (one task per core), with cgdn's rule of one OpenMP thread
  per task, and with 2 OpenMP threads per task (oversubscribed) for comparison;
- a ``distributed.LocalCluster`` of 2 worker processes (1 thread each) on loopback.

Throughput is input megabytes per second; Dask's progress bars show on stderr.

Run (with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset):
    python benchmarks/bench_dask.py [--shape 64,512,512,16] [--chunk-rows 4] [--dir /tmp]
"""
import argparse
import contextlib
import logging
import sys
import os
import tempfile
import time

import numpy as np

import cgdn


class NpySource:
    """Read slices of a .npy file through a memory map opened where the task runs (only
    the path travels in the task graph)."""

    def __init__(self, path):
        self.path = path
        arr = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        return np.asarray(np.load(self.path, mmap_mode="r")[key])


class NpyTarget:
    """Write slices into a .npy file (opened where the task runs)."""

    def __init__(self, path):
        self.path = path

    def __setitem__(self, key, value):
        out = np.load(self.path, mmap_mode="r+")
        out[key] = value
        out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="64,512,512,16")
    parser.add_argument("--chunk-rows", type=int, default=4, help="images per chunk")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import dask
    import dask.array as da
    import distributed
    from dask.diagnostics import ProgressBar

    shape = tuple(int(v) for v in args.shape.split(","))
    c = shape[-1]
    src_path = os.path.join(args.dir, "cgdn_bench_input.npy")
    dst_path = os.path.join(args.dir, "cgdn_bench_output.npy")
    rng = np.random.default_rng(0)
    src = np.lib.format.open_memmap(src_path, mode="w+", dtype=np.float32, shape=shape)
    for i in range(shape[0]):
        src[i] = rng.standard_normal(shape[1:], dtype=np.float32)
    src.flush()
    del src
    np.lib.format.open_memmap(dst_path, mode="w+", dtype=np.float32, shape=shape).flush()
    megabytes = np.prod(shape) * 4 / 1e6
    beta, gamma = np.ones(c, np.float32), (0.1 * np.eye(c) + 0.01).astype(np.float32)
    chunks = (args.chunk_rows,) + shape[1:]
    print(f"cgdn {cgdn.__version__}; input {shape} float32, {megabytes:.0f} MB on disk "
          f"({args.dir}); chunks {chunks}; {os.cpu_count()} cores")
    print("\n| how | threads | s | MB/s |\n| --- | --- | --- | --- |")

    x = np.load(src_path)                            # in memory, not timed
    out = np.empty_like(x)
    cgdn.apply_gdn(x, beta, gamma, out=out)
    t0 = time.perf_counter()
    cgdn.apply_gdn(x, beta, gamma, out=out)
    t = time.perf_counter() - t0
    print(f"| one in-memory call | {cgdn.show_config('dicts')['max_threads']} OpenMP | "
          f"{t:.2f} | {megabytes / t:.0f} |")
    reference = out
    # the thread rule where tasks are compute-bound: a Dask array held in memory
    in_memory = da.from_array(x, chunks=chunks)
    rule = {}
    for label, num_threads in (("1 OpenMP thread per task (cgdn's rule)", None),
                               ("2 OpenMP threads per task", 2)):
        y = cgdn.apply_gdn(in_memory, beta, gamma, num_threads=num_threads)
        with dask.config.set(scheduler="threads"):
            da.store(y, out, lock=False)          # warm-up
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                da.store(y, out, lock=False)
                times.append(time.perf_counter() - t0)
        t = float(np.median(times))
        rule[label] = t
        print(f"| in-memory Dask array, threaded scheduler, {label} | {os.cpu_count()} tasks "
              f"| {t:.2f} | {megabytes / t:.0f} |")
    del x

    lazy = da.from_array(NpySource(src_path), chunks=chunks, asarray=False)
    results = {}
    for label, num_threads in (("threaded scheduler, 1 OpenMP thread per task (cgdn's rule)",
                                None),
                               ("threaded scheduler, 2 OpenMP threads per task", 2)):
        y = cgdn.apply_gdn(lazy, beta, gamma, num_threads=num_threads)
        with dask.config.set(scheduler="threads"), ProgressBar(minimum=0.5, out=sys.stderr):
            t0 = time.perf_counter()
            da.store(y, NpyTarget(dst_path), lock=False)
            t = time.perf_counter() - t0
        results[label] = t
        print(f"| {label} | {os.cpu_count()} tasks | {t:.2f} | {megabytes / t:.0f} |")
    assert np.array_equal(np.load(dst_path, mmap_mode="r")[:2], reference[:2])

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as client:
        y = cgdn.apply_gdn(lazy, beta, gamma)
        t0 = time.perf_counter()
        stored = da.store(y, NpyTarget(dst_path), lock=False, compute=False)
        future = client.compute(stored)
        with contextlib.redirect_stdout(sys.stderr):
            distributed.progress(future)
        future.result()
        t = time.perf_counter() - t0
        print(f"\n| LocalCluster, 2 workers x 1 thread | 2 tasks | {t:.2f} | "
              f"{megabytes / t:.0f} |")
    assert np.array_equal(np.load(dst_path, mmap_mode="r")[-2:], reference[-2:])
    ours, over = rule.values()
    disk_ours, disk_over = results.values()
    print(f"\nthe thread rule (one OpenMP thread per task) against 2 per task: "
          f"{over / ours:.2f}x as fast in memory, {disk_over / disk_ours:.2f}x from disk")
    os.unlink(src_path)
    os.unlink(dst_path)


if __name__ == "__main__":
    main()
