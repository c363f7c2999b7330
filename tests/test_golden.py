"""Every TensorFlow and PyTorch reference file through apply_gdn."""
import numpy as np
import pytest

import cgdn
from conftest import GOLDEN_FILES, reference_gdn

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _case(path):
    with np.load(path, allow_pickle=False) as f:
        case = {key: f[key] for key in f.files}
    case["alpha"] = float(case["alpha"]) if "alpha" in case else 2.0
    case["epsilon"] = float(case["epsilon"]) if "epsilon" in case else 0.5
    case["rectify"] = bool(case["rectify"]) if "rectify" in case else False
    return case


def test_all_golden_files_present():
    names = {p.name for p in GOLDEN_FILES}
    assert sum(n.startswith("tf_") for n in names) == 52
    assert sum(n.startswith("torch_") for n in names) == 4


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_golden(every_isa, path):
    case = _case(path)
    x = case["x"]
    y = cgdn.apply_gdn(
        x, case["beta"], case["gamma"], inverse=bool(case["inverse"]),
        rectify=case["rectify"], alpha=case["alpha"], epsilon=case["epsilon"],
        data_format=str(case["data_format"]),
    )
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, case["y"], **TOL[x.dtype.type])


@pytest.mark.parametrize("path", GOLDEN_FILES[::5], ids=lambda p: p.stem)
def test_golden_in_place_and_threads(every_isa, path):
    case = _case(path)
    kwargs = dict(inverse=bool(case["inverse"]), rectify=case["rectify"], alpha=case["alpha"],
                  epsilon=case["epsilon"], data_format=str(case["data_format"]))
    serial = cgdn.apply_gdn(case["x"], case["beta"], case["gamma"], num_threads=1, **kwargs)
    buf = case["x"].copy()
    result = cgdn.apply_gdn(buf, case["beta"], case["gamma"], out=buf, num_threads=2, **kwargs)
    assert result is buf
    np.testing.assert_array_equal(buf, serial)


@pytest.mark.parametrize("path", [p for p in GOLDEN_FILES if p.name.startswith("torch_")],
                         ids=lambda p: p.stem)
def test_torch_gamma_is_transposed(path):
    # PyTorch stores gamma as a conv weight [out, in]: using it untransposed is wrong.
    case = _case(path)
    np.testing.assert_array_equal(case["gamma_torch"], case["gamma"].T)
    wrong = cgdn.apply_gdn(case["x"], case["beta"], case["gamma_torch"],
                           inverse=bool(case["inverse"]), data_format="channels_first")
    assert not np.allclose(wrong, case["y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", [p for p in GOLDEN_FILES if "f64" in p.name][:8],
                         ids=lambda p: p.stem)
def test_float64_matches_reference_tightly(path):
    case = _case(path)
    kwargs = dict(inverse=bool(case["inverse"]), rectify=case["rectify"], alpha=case["alpha"],
                  epsilon=case["epsilon"], data_format=str(case["data_format"]))
    y = cgdn.apply_gdn(case["x"], case["beta"], case["gamma"], **kwargs)
    np.testing.assert_allclose(y, reference_gdn(case["x"], case["beta"], case["gamma"], **kwargs),
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_reference_oracle_matches_golden(path):
    # The NumPy oracle the other tests use is itself checked against TensorFlow/PyTorch.
    case = _case(path)
    y = reference_gdn(case["x"], case["beta"], case["gamma"], inverse=bool(case["inverse"]),
                      rectify=case["rectify"], alpha=case["alpha"], epsilon=case["epsilon"],
                      data_format=str(case["data_format"]))
    np.testing.assert_allclose(y, case["y"], **TOL[case["x"].dtype.type])
