"""Arrays that end (or start) at an unmapped page: a kernel reading or writing one element
past the caller's array, or before it, faults here even without a sanitizer.

Each array is placed in an anonymous mapping so that its last byte is the last byte
before a page made inaccessible with ``mprotect(PROT_NONE)`` (or its first byte the first
after one). Shapes give every tail of 1 .. lanes - 1 elements of the widest vectors
(16 float32 lanes) in both layouts, on every kernel variant, for the input and for
``out``; the density functions read their inputs from such pages too. A fault ends the
test run with a segmentation fault (pytest's faulthandler prints where)."""
import ctypes
import ctypes.util
import mmap
import sys

import numpy as np
import pytest

import cgdn
from conftest import assert_close, reference_gdn

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="mprotect through ctypes: Linux only")

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_KEEP = []    # mappings stay alive as long as the process: arrays may outlive a test


def guarded(shape, dtype, at_end=True):
    """A zeroed writable array of ``shape`` whose last byte ends right before an
    inaccessible page (``at_end``) or whose first byte starts right after one."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    n_pages = -(-nbytes // PAGE) + 1
    area = mmap.mmap(-1, n_pages * PAGE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    guard = address + (n_pages - 1) * PAGE if at_end else address
    if _libc.mprotect(guard, PAGE, 0) != 0:      # 0: PROT_NONE
        pytest.skip(f"mprotect failed: errno {ctypes.get_errno()}")
    _KEEP.append(area)
    start = (n_pages - 1) * PAGE - nbytes if at_end else PAGE
    return np.frombuffer(area, dtype=dtype, count=int(np.prod(shape)),
                         offset=start).reshape(shape)


def _parameters(c, dtype, rng):
    beta = (0.5 + rng.random(c)).astype(dtype)
    gamma = (rng.random((c, c)) * 0.2).astype(dtype)
    return beta, gamma


# (pixels or positions, channels): every tail of 1..15 elements past whole vectors of 16
# float32 lanes (and of 8 and 4), with channel counts of every kernel family
CASES = [(p, c) for c in (1, 2, 3, 5, 8, 9, 12, 16, 17, 24, 33, 64, 70, 130)
         for p in (1, 3, 7, 15, 17, 31)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("at_end", [True, False], ids=["ends-at-guard", "starts-at-guard"])
def test_kernels_stay_inside_the_callers_arrays(every_isa, dtype, data_format, at_end, rng):
    for n, c in CASES:
        shape = (1, n, c) if data_format == "channels_last" else (1, c, n)
        beta, gamma = _parameters(c, dtype, rng)
        x = guarded(shape, dtype, at_end)
        x[...] = rng.standard_normal(shape).astype(dtype)
        out = guarded(shape, dtype, at_end)
        for inverse in (False, True):
            cgdn.apply_gdn(x, beta, gamma, inverse=inverse, data_format=data_format, out=out)
            xl = x if data_format == "channels_last" else np.moveaxis(x, 1, -1)
            want = reference_gdn(xl, beta, gamma, inverse=inverse)
            got = out if data_format == "channels_last" else np.moveaxis(out, 1, -1)
            assert_close(got, want, dtype)
        y = cgdn.apply_gdn(x, beta, gamma, data_format=data_format, out=x)   # in place
        assert y is x


def test_density_functions_stay_inside_the_callers_arrays(every_isa, rng):
    for n, c in [(1, 1), (3, 5), (17, 9), (31, 16), (15, 33)]:
        beta, gamma = _parameters(c, np.float64, rng)
        x = guarded((n, c), np.float64)
        x[...] = rng.standard_normal((n, c)) * 0.5
        y = guarded((n, c), np.float64)
        cgdn.apply_gdn(x, beta, gamma, out=y)
        np.testing.assert_allclose(cgdn.gdn_inverse(y, beta, gamma), x, rtol=1e-8, atol=1e-10)
        assert cgdn.gdn_logdet(x, beta, gamma).shape == (n,)
        g = guarded((n, c), np.float64)
        g[...] = 1.0
        gx, gb, gg = cgdn.gdn_vjp(x, beta, gamma, g)
        assert gx.shape == (n, c) and gb.shape == (c,) and gg.shape == (c, c)


def test_the_guard_page_faults():
    """The check is real: reading one element past such an array (or one before it)
    kills the process with SIGSEGV."""
    import subprocess
    import textwrap
    for index in ("x.size", "-1"):
        code = textwrap.dedent(f"""
            import ctypes, sys
            sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})
            import numpy as np
            from test_guard_pages import guarded
            x = guarded((3, 5), np.float32, at_end={index == 'x.size'})
            p = ctypes.cast(x.ctypes.data, ctypes.POINTER(ctypes.c_float))
            print(p[0], flush=True)   # before the fault, whatever the buffering
            print(p[{index}])
        """)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
        # SIGSEGV, or (under AddressSanitizer, which catches it) its SEGV report
        assert run.returncode == -11 or (run.returncode != 0 and "AddressSanitizer: SEGV"
                                         in run.stderr), (run.returncode, run.stderr[-2000:])
        assert run.stdout.startswith("0.0")
