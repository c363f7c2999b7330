"""Shared test helpers: a float64 NumPy reference, tolerances and golden-file access."""
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import cgdn
from cgdn import _isa
from cgdn._reference import reference_gdn  # noqa: F401  (re-exported for tests)

# Reference outputs of TensorFlow (tensorflow-compression 2.14.1) and PyTorch 2.13.0,
# generated with those libraries (see golden/README.md).
GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.npz"))

# Property-test profiles: "ci" (the default, a few hundred examples per test) and
# "thorough" (10,000 per test): python -m pytest tests/test_properties.py
# --hypothesis-profile=thorough
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=_SUPPRESSED)
settings.register_profile("thorough", max_examples=10_000, deadline=None,
                          suppress_health_check=_SUPPRESSED)
settings.load_profile("ci")

# Long runs are opt-in pytest markers: without -m, tests marked slow or bigmem are
# deselected; "python -m pytest -m bigmem" (or -m slow) runs them. Registered here, not in
# pyproject.toml, so that an installed package's tests (run without the source tree)
# deselect them too.
_OPT_IN = {"slow": "a long run, opt-in: python -m pytest -m slow",
           "bigmem": "needs about 10 GB of memory, opt-in: python -m pytest -m bigmem"}


def pytest_configure(config):
    for name, text in _OPT_IN.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config, items):
    if config.option.markexpr:
        return   # an explicit -m selects what it names
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(name) for name in _OPT_IN) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# Tolerances against a float64 reference, by dtype of the result.
RTOL = {np.float16: 2e-3, np.float32: 1e-5, np.float64: 1e-10}
ATOL = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-10}


def assert_close(actual, expected, dtype):
    dtype = np.dtype(dtype).type
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.fixture
def store():
    """A store with two layers: 'a' (3 channels, float32) and 'b' (5, float64, not
    trainable)."""
    s = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=s)
    cgdn.gdn(np.ones((1, 2, 2, 5)), name="b", trainable=False, store=s)
    return s


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


# Every kernel variant this machine runs (e.g. avx512, avx2, baseline), best first.
VARIANTS = _isa.available()


@pytest.fixture(params=VARIANTS)
def every_isa(request):
    """Run the test once per kernel variant: the public functions run on it inside the
    test, and the fixture's value is the variant (cgdn._core.Variant), whose kernels the
    private entry points (cgdn._testing) take."""
    with _isa.use(request.param) as variant:
        yield variant
