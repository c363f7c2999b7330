"""Memory: repeated calls keep RSS flat; in place adds no large buffers; big inputs.

CI runs a shorter loop. The full run of the issue (10,000 small calls, 200 large):

    CGDN_MEMORY_CALLS=10000 CGDN_MEMORY_LARGE_CALLS=200 python -m pytest tests/test_memory.py

Inputs with more than 2**31 elements (about 9 GB each) run only when asked, by their
marker (the default run deselects ``slow`` and ``bigmem`` tests):

    python -m pytest -m bigmem tests/test_memory.py
"""
import gc
import os
import pathlib

import numpy as np
import pytest

import cgdn

SMALL_CALLS = int(os.environ.get("CGDN_MEMORY_CALLS", "2000"))
LARGE_CALLS = int(os.environ.get("CGDN_MEMORY_LARGE_CALLS", "30"))
STATM = pathlib.Path("/proc/self/statm")


def rss_bytes():
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not STATM.exists(), reason="needs Linux /proc to read RSS")
def test_rss_flat_over_many_calls(rng):
    store = cgdn.ParameterStore()
    small = [rng.standard_normal((1, 8, 8, c)).astype(np.float32) for c in (3, 16, 64)]
    large = rng.standard_normal((1, 128, 128, 128)).astype(np.float32)
    out = np.empty_like(large)

    def run(n_small, n_large):
        for i in range(n_small):
            x = small[i % 3]
            c = x.shape[-1]
            cgdn.apply_gdn(x, np.ones(c), np.full((c, c), 0.01), inverse=bool(i & 1))
            cgdn.gdn(x, name=f"g{c}", reuse=cgdn.AUTO_REUSE, store=store)
        for i in range(n_large):
            cgdn.apply_gdn(large, np.ones(128), np.full((128, 128), 0.01),
                           out=out if i & 1 else None)
        gc.collect()

    run(300, 5)  # warm-up: caches, thread pools, lazily loaded libraries
    before = rss_bytes()
    run(SMALL_CALLS, LARGE_CALLS)
    growth = rss_bytes() - before
    assert growth < 1 << 20, f"RSS grew by {growth / 2**20:.2f} MiB"


_PEAK_SCRIPT = """
import time
import numpy as np, cgdn

def status(key):  # kB values of /proc/self/status; VmHWM is this process's peak RSS
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

x = np.random.default_rng(0).standard_normal((1, 384, 256, 192), dtype=np.float32)
beta, gamma = np.ones(192, np.float32), np.full((192, 192), 0.001, np.float32)
cgdn.apply_gdn(x[:, :4], beta, gamma, out=x[:, :4])      # warm-up: libraries, threads
# Reset the peak to the current RSS (Linux >= 4.0): earlier transients do not count.
# Under an emulator (qemu-user) the emulator's own allocations share this RSS and may
# move it just after a reset: reset again until the peak settles near it.
for _ in range(50):
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        break
    rss = status("VmRSS")
    if status("VmHWM") < rss + (2 << 20):
        break
    time.sleep(0.02)
rss = status("VmRSS")
# the peak so far must sit below rss + 2 MiB, or the check below could not fail
assert status("VmHWM") < rss + (2 << 20), (status("VmHWM"), rss)
cgdn.apply_gdn(x, beta, gamma, out=x)
print(status("VmHWM") - rss)
"""


@pytest.mark.skipif(not STATM.exists(), reason="needs Linux /proc to read RSS")
def test_in_place_peak_memory_is_small():
    # In place on (1, 384, 256, 192) float32 (72 MiB), in a fresh process so the peak
    # RSS before the call is the RSS of the input itself: the call may add scratch only.
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    extra = int(run.stdout.split()[-1])
    assert extra < 2 << 20, f"in-place call raised peak RSS by {extra / 2**20:.2f} MiB"


@pytest.mark.bigmem   # about 10 GB of memory; opt-in: python -m pytest -m bigmem
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_big_input_more_than_2_31_elements_in_place(data_format):
    n = 2**29 + 3                 # x 5 channels = 2**31 + 2**29 + 15 elements
    shape = (n, 5) if data_format == "channels_last" else (1, 5, n)
    x = np.empty(shape, np.float32)
    x_last = x if data_format == "channels_last" else x[0].T   # (n, 5) view
    x_last[:] = np.arange(5, dtype=np.float32) - 2.0
    x_last[-1] = [3.0, -1.0, 0.5, 2.0, 4.0]
    beta, gamma = np.ones(5), 0.1 * np.eye(5) + 0.01
    assert x.size > 2**31
    cgdn.apply_gdn(x, beta, gamma, out=x, data_format=data_format)
    from cgdn._reference import reference_gdn

    first = reference_gdn((np.arange(5) - 2.0)[None], beta, gamma)[0]
    last = reference_gdn(np.array([[3.0, -1.0, 0.5, 2.0, 4.0]]), beta, gamma)[0]
    for row in (0, 2**28, 2**29 - 7, n - 2):
        np.testing.assert_allclose(x_last[row], first, rtol=1e-6)
    np.testing.assert_allclose(x_last[-1], last, rtol=1e-6)
