"""Many Python threads at once: apply_gdn and gdn on the shared default store, on every
kernel variant."""
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pytest

import cgdn


@pytest.fixture(autouse=True)
def clean_default_store():
    cgdn.get_default_store().clear()
    yield
    cgdn.get_default_store().clear()


def test_eight_threads_default_store_no_deadlock(every_isa, rng):
    store = cgdn.get_default_store()
    xs = [rng.standard_normal((2, 24, 24, c)).astype(np.float32) for c in (3, 12, 40)]
    serial_apply = [cgdn.apply_gdn(x, np.ones(x.shape[-1]), np.full((x.shape[-1],) * 2, 0.05),
                                   num_threads=1) for x in xs]
    serial_gdn = [cgdn.gdn(x, store=cgdn.ParameterStore()) for x in xs]
    barrier = threading.Barrier(8)

    def work(k):
        barrier.wait()   # start together
        results = []
        for i in range(30):
            j = (k + i) % 3
            x, c = xs[j], xs[j].shape[-1]
            results.append(("apply", j, cgdn.apply_gdn(x, np.ones(c), np.full((c, c), 0.05),
                                                      num_threads=2)))
            results.append(("shared", j, cgdn.gdn(x, name=f"shared_{j}",
                                                 reuse=cgdn.AUTO_REUSE, num_threads=2)))
            results.append(("fresh", j, cgdn.gdn(x, num_threads=-1)))
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(work, k) for k in range(8)]
        done, pending = wait(futures, timeout=120)
        assert not pending, "deadlock: threads did not finish within 120 s"
    for future in futures:
        for kind, j, y in future.result():
            expected = serial_apply[j] if kind == "apply" else serial_gdn[j]
            np.testing.assert_array_equal(y, expected)
    names = list(store)
    assert len(names) == len(set(names))
    shared = [n for n in names if n.startswith("shared_")]
    assert sorted(shared) == sorted(f"shared_{j}/reparam_{v}" for j in range(3)
                                    for v in ("beta", "gamma"))
    fresh = [n for n in names if n.startswith("gdn") and n.endswith("/reparam_beta")]
    assert len(fresh) == 8 * 30   # every fresh layer created once: none lost or merged
