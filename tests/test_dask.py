"""cgdn on Dask arrays: the threaded scheduler and a distributed LocalCluster on loopback
(started and closed by these tests)."""
import logging
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cgdn

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


def _params(rng, c):
    beta = rng.uniform(0.5, 1.5, c)
    gamma = rng.uniform(0, 0.3, (c, c))
    return beta, gamma


def test_import_cgdn_does_not_import_dask():
    code = "import sys, cgdn; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
@pytest.mark.parametrize("chunks", ["channels split", "one chunk", "odd"])
@pytest.mark.parametrize("mode", [{}, {"inverse": True}, {"alpha": 1.0, "epsilon": 1.0}])
def test_threaded_scheduler_equals_numpy(rng, layout, chunks, mode):
    c = 6
    x = rng.standard_normal((3, 10, 11, c)).astype(np.float32)
    if layout == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    axis = -1 if layout == "channels_last" else 1
    spec = {"channels split": {0: 1, axis: 2}, "one chunk": -1, "odd": (2, 3, 4, 5)}[chunks]
    lazy = da.from_array(x, chunks=spec)
    beta, gamma = _params(rng, c)
    y = cgdn.apply_gdn(lazy, beta, gamma, data_format=layout, **mode)
    assert isinstance(y, da.Array)
    expected_chunks = list(lazy.chunks)
    expected_chunks[axis] = (c,)
    assert y.chunks == tuple(expected_chunks)
    with dask.config.set(scheduler="threads"):
        got = y.compute()
    np.testing.assert_array_equal(got, cgdn.apply_gdn(x, beta, gamma, data_format=layout,
                                                      **mode))


def test_big_channel_chunks_are_rechunked_to_fit(rng):
    x = da.ones((64, 64, 64, 32), chunks=(64, 64, 64, 1), dtype=np.float32)
    with dask.config.set({"array.chunk-size": "1MiB"}):
        y = cgdn.apply_gdn(x, np.ones(32), 0.1 * np.eye(32))
    assert y.chunks[-1] == (32,)
    assert max(np.prod([max(c) for c in y.chunks]) * 4, 0) <= 1 << 20
    np.testing.assert_allclose(y[:2, :2, :2].compute(), 1 / np.sqrt(1.1), rtol=1e-6)


def test_gdn_layers_and_density_functions_on_dask(rng):
    c = 4
    x = rng.standard_normal((2, 8, 9, c))
    lazy = da.from_array(x, chunks=(1, 4, 9, 2))
    store = cgdn.ParameterStore()
    y_lazy = cgdn.gdn(lazy, name="g", store=store)       # variables created at build time
    assert sorted(store) == ["g/reparam_beta", "g/reparam_gamma"]
    store["g/reparam_beta"] = [1.2, 1.1, 1.0, 0.9]          # after: the graph keeps its values
    y = y_lazy.compute(scheduler="threads")
    store["g/reparam_beta"] = np.sqrt(np.ones(4) + 2.0**-36)
    np.testing.assert_array_equal(y, cgdn.gdn(x, name="g", reuse=True, store=store))
    layer = cgdn.GDN(inverse=True)
    np.testing.assert_array_equal(layer(lazy).compute(scheduler="threads"), layer(x))
    beta, gamma = _params(rng, c)
    forward = cgdn.apply_gdn(x, beta, gamma)
    inv = cgdn.gdn_inverse(da.from_array(forward, chunks=(1, 3, 9, 4)), beta, gamma)
    np.testing.assert_allclose(inv.compute(scheduler="threads"), x, rtol=1e-10, atol=1e-12)
    swapped = da.from_array(x.astype(">f8"), chunks=(1, 4, 9, 2))   # the other byte order
    y_swapped = cgdn.apply_gdn(swapped, beta, gamma)
    assert y_swapped.dtype == np.float64 and y_swapped.dtype.isnative
    np.testing.assert_array_equal(y_swapped.compute(scheduler="threads"), forward)
    ld = cgdn.gdn_logdet(lazy, beta, gamma)
    assert ld.shape == (2, 8, 9) and ld.chunks == ((1, 1), (4, 4), (9,))
    np.testing.assert_array_equal(ld.compute(scheduler="threads"), cgdn.gdn_logdet(x, beta, gamma))


def test_dask_refusals(rng):
    lazy = da.ones((2, 3, 3, 2), chunks=1)
    with pytest.raises(TypeError, match="out= cannot be used with a Dask array"):
        cgdn.apply_gdn(lazy, np.ones(2), np.eye(2), out=np.empty((2, 3, 3, 2)))
    with pytest.raises(ValueError, match="activity_regularizer"):
        cgdn.gdn(lazy, store=cgdn.ParameterStore(), activity_regularizer=np.sum)
    with pytest.raises(TypeError, match="dtype"):
        cgdn.apply_gdn(da.ones((2, 2), dtype=int), np.ones(2), np.eye(2))
    with pytest.raises(TypeError, match="dtype"):
        cgdn.apply_gdn(da.ones((2, 2), dtype=">i4"), np.ones(2), np.eye(2))
    unknown = da.ones((4, 2), chunks=2)[da.ones(4, chunks=2) > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        cgdn.apply_gdn(unknown, np.ones(2), np.eye(2))


def test_tasks_pickle(rng):
    y = cgdn.apply_gdn(da.ones((4, 3), chunks=2), np.ones(3), 0.1 * np.eye(3))
    graph = dict(y.__dask_graph__())
    assert len(pickle.loads(pickle.dumps(graph))) == len(graph)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                  silence_logs=logging.ERROR) as lc, distributed.Client(lc) as client:
        yield client


def test_local_cluster_equals_numpy(cluster, rng):
    x = rng.standard_normal((4, 20, 20, 8)).astype(np.float32)
    beta, gamma = _params(rng, 8)
    lazy = da.from_array(x, chunks=(1, 10, 20, 4))
    store = cgdn.ParameterStore()
    results = cluster.compute([
        cgdn.apply_gdn(lazy, beta, gamma),
        cgdn.gdn(lazy, name="g", store=store, inverse=True),
        cgdn.GDN(8, alpha=1.0, epsilon=1.0)(lazy),
    ], sync=True)
    np.testing.assert_array_equal(results[0], cgdn.apply_gdn(x, beta, gamma))
    np.testing.assert_array_equal(results[1], cgdn.gdn(x, name="g", reuse=True, store=store,
                                                       inverse=True))
    np.testing.assert_array_equal(results[2], cgdn.GDN(8, alpha=1.0, epsilon=1.0)(x))


def test_local_cluster_blocks_at_any_address(cluster, rng):
    # Blocks that workers concatenate (the channel axis split, so apply_gdn rechunks it)
    # or receive from another process arrive at any byte address, aligned or not: each
    # block is read through an aligned copy where needed, with the same results.
    x = rng.standard_normal((1, 32, 32, 16)).astype(np.float32)
    beta, gamma = _params(rng, 16)
    beta, gamma = beta.astype(np.float32), gamma.astype(np.float32)
    lazy = da.from_array(x, chunks=(1, 32, 32, 8))
    random = da.random.default_rng(3).standard_normal((1, 16, 16, 16), chunks=(1, 8, 16, 8))
    got, r, got_random = cluster.compute(
        [cgdn.apply_gdn(lazy, beta, gamma), random,
         cgdn.apply_gdn(random, beta, gamma, inverse=True)], sync=True)
    np.testing.assert_array_equal(got, cgdn.apply_gdn(x, beta, gamma))
    np.testing.assert_array_equal(got_random, cgdn.apply_gdn(r, beta, gamma, inverse=True))


def _slowly(block):
    time.sleep(0.05)        # long enough for the worker to die in the middle
    return block


def test_a_killed_worker_gives_a_correct_result_or_a_clear_error(cluster):
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers lack this module
    n, c = 2_000_000, 8
    x = da.ones((n, c), chunks=(25_000, c), dtype=np.float32).map_blocks(_slowly)
    total = cgdn.apply_gdn(x, np.ones(c), 0.1 * np.eye(c)).sum(dtype=np.float64)
    future = cluster.compute(total)
    time.sleep(0.5)
    assert not future.done()        # 80 tasks of 50 ms on 2 workers: about 2 s
    pids = cluster.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    try:
        value = future.result(timeout=120)
    except distributed.KilledWorker:
        return                      # a clear error is acceptable; a wrong number is not
    assert value == pytest.approx(n * c / np.sqrt(1.1), rel=1e-6)


def test_input_larger_than_worker_memory_is_processed_chunk_by_chunk():
    n, c = 20_000_000, 8                                  # 640 MB of float32
    x = da.ones((n, c), chunks=(500_000, c), dtype=np.float32)
    total = cgdn.apply_gdn(x, np.ones(c), 0.1 * np.eye(c)).sum(dtype=np.float64)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit="250MB", host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as lc, \
            distributed.Client(lc) as client:
        before = set(client.scheduler_info()["workers"])
        value = client.compute(total, sync=True)
        after = set(client.scheduler_info()["workers"])
    assert value == pytest.approx(n * c / np.sqrt(1.1), rel=1e-6)
    assert before == after                                # no worker was killed and replaced
