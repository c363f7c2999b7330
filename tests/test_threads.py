"""Thread-count semantics, thread invariance, BLAS limits and concurrent callers.

The tests that run kernels run once per kernel variant (the ``every_isa`` fixture), so a
machine with AVX-512 also checks what an AVX2-only or baseline machine would run.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import cgdn
from cgdn import _core
from cgdn._threads import effective_num_threads


@pytest.mark.parametrize("shape,data_format", [
    ((1, 64, 64, 3), "channels_last"), ((1, 64, 64, 16), "channels_last"),
    ((2, 40, 40, 96), "channels_last"), ((1, 30, 30, 192), "channels_last"),
    ((1, 20, 20, 400), "channels_last"), ((2, 16, 40, 40), "channels_first"),
    ((1, 96, 33, 31), "channels_first"), ((1, 400, 9, 11), "channels_first"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_for_any_thread_count(every_isa, rng, shape, data_format, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    c = shape[-1] if data_format == "channels_last" else shape[1]
    beta = rng.uniform(0.5, 1.5, c)
    gamma = rng.uniform(0, 0.2, (c, c))
    results = [cgdn.apply_gdn(x, beta, gamma, data_format=data_format, num_threads=n)
               for n in (1, 2, 3, -1)]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_effective_num_threads():
    all_threads = effective_num_threads(None)
    assert all_threads >= 1
    assert effective_num_threads(-1) == all_threads
    assert effective_num_threads(-1000) == 1
    assert effective_num_threads(3) == 3
    assert effective_num_threads(np.int64(2)) == 2


def test_threadpoolctl_openmp_limit_is_respected():
    with threadpool_limits(limits=1, user_api="openmp"):
        assert effective_num_threads(None) == 1
        assert _core.omp_max_threads() == 1


def test_openmp_env_var_respected():
    if os.environ.get("OMP_NUM_THREADS"):
        assert effective_num_threads(None) == _core.omp_max_threads()


def test_blas_limits_restored_after_call(rng):
    def blas_threads():
        return sorted((p["filepath"], p["num_threads"]) for p in threadpool_info()
                      if p["user_api"] == "blas")

    before = blas_threads()
    x = rng.standard_normal((4000, 64)).astype(np.float32)
    cgdn.apply_gdn(x, np.ones(64), np.full((64, 64), 0.01))
    assert blas_threads() == before


CONCURRENT_CASES = [((2, 50, 50, c), "channels_last") for c in (3, 16, 64, 130, 400)] + [
    ((2, c, 30, 30), "channels_first") for c in (5, 64, 192)]


def _concurrent_case(rng, shape, data_format):
    c = shape[-1] if data_format == "channels_last" else shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    return x, np.ones(c), np.full((c, c), 0.05), data_format


def test_concurrent_callers_match_serial(every_isa, rng):
    cases = [_concurrent_case(rng, *case) for case in CONCURRENT_CASES]
    serial = [cgdn.apply_gdn(x, b, g, data_format=f, num_threads=1) for x, b, g, f in cases]

    def work(k):
        i = k % len(cases)
        x, b, g, f = cases[i]
        return i, cgdn.apply_gdn(x, b, g, data_format=f, num_threads=2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for i, y in pool.map(work, range(8 * len(cases))):
            np.testing.assert_array_equal(y, serial[i])
    info = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert all(p["num_threads"] >= 1 for p in info)


def test_results_do_not_depend_on_blas_threads_or_calling_thread(every_isa, rng):
    # Regression: the kernels once called BLAS per tile, held single-threaded with
    # threadpoolctl. threadpoolctl lets only one Python thread at a time change
    # OpenBLAS's (process-wide) thread count and ignores the others, so calls from
    # another thread ran a 2-thread BLAS whose Haswell/Zen kernels sum in another
    # order. The kernels call no BLAS now: BLAS settings and the calling thread must not
    # matter at all.
    cases = [_concurrent_case(rng, *case) for case in CONCURRENT_CASES]
    expected = [cgdn.apply_gdn(x, b, g, data_format=f) for x, b, g, f in cases]
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            for (x, b, g, f), y in zip(cases, expected):
                np.testing.assert_array_equal(cgdn.apply_gdn(x, b, g, data_format=f), y)
    results = {}

    def in_other_thread():
        results["y"] = [cgdn.apply_gdn(x, b, g, data_format=f) for x, b, g, f in cases]

    worker = threading.Thread(target=in_other_thread)
    worker.start()
    worker.join()
    for y, e in zip(results["y"], expected):
        np.testing.assert_array_equal(y, e)


def _fork_child(args):
    x, beta, gamma = args
    return cgdn.apply_gdn(x, beta, gamma, num_threads=2)


def test_calls_after_fork_while_calls_run(rng):
    # The worker threads do not survive fork(): a child forked while the parent's helpers
    # run calls (from another Python thread) starts its own and gets the same bits.
    import multiprocessing

    x = rng.standard_normal((2, 64, 64, 16)).astype(np.float32)
    beta, gamma = rng.uniform(0.5, 1.5, 16), rng.uniform(0, 0.2, (16, 16))
    expected = cgdn.apply_gdn(x, beta, gamma, num_threads=1)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            cgdn.apply_gdn(x, beta, gamma, num_threads=2)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        context = multiprocessing.get_context("fork")
        for _ in range(4):
            with context.Pool(1) as pool:
                got = pool.apply_async(_fork_child, ((x, beta, gamma),)).get(timeout=60)
            np.testing.assert_array_equal(got, expected)
    finally:
        stop.set()
        worker.join()


@pytest.mark.parametrize("num_threads", [7, 300, 1 << 20])
def test_more_threads_than_work_or_cores(rng, num_threads):
    # more threads than tiles, than cores, than the pool's cap: the same bits
    for shape, fmt in (((1, 40, 40, 8), "channels_last"), ((2, 24, 30, 30), "channels_first")):
        x = rng.standard_normal(shape).astype(np.float32)
        c = shape[-1] if fmt == "channels_last" else shape[1]
        beta, gamma = rng.uniform(0.5, 1.5, c), rng.uniform(0, 0.2, (c, c))
        np.testing.assert_array_equal(
            cgdn.apply_gdn(x, beta, gamma, data_format=fmt, num_threads=num_threads),
            cgdn.apply_gdn(x, beta, gamma, data_format=fmt, num_threads=1))
        np.testing.assert_array_equal(
            cgdn.gdn_logdet(x, beta, gamma, data_format=fmt, num_threads=num_threads),
            cgdn.gdn_logdet(x, beta, gamma, data_format=fmt, num_threads=1))
