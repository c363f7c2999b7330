"""The reparameterization of GDN variables."""
import numpy as np
import pytest

from cgdn import _reparam, params


def test_reparam_helpers_match_tf_definitions():
    offset = 2.0**-10
    raw = np.array([-1.0, 0.0, offset / 2, offset, 0.5], np.float32)
    got = params.reparam_value(raw, 0.0, offset, np.float32)
    np.testing.assert_array_equal(got[:4], 0)
    assert got[4] == np.float32(0.25) - np.float32(offset**2)
    init = params.reparam_init(np.array([0.0, 1.0]), offset, np.float64)
    np.testing.assert_allclose(params.reparam_value(init, 0.0, offset), [0.0, 1.0])


def test_layers_of_a_mapping_are_checked():
    ok = {"a/reparam_beta": np.ones(2), "a/reparam_gamma": np.eye(2),
          "a/reparam_alpha": np.array(1.0), "b/other": np.ones(3)}
    assert list(_reparam.gdn_layers(ok, "src")) == ["a"]
    for bad, match in (({"a/reparam_gamma": np.eye(2)}, "a/reparam_beta is missing"),
                       ({**ok, "a/reparam_alpha": np.ones(2)}, "must be a scalar"),
                       ({**ok, "a/reparam_beta": np.ones(3)}, r"\(C, C\)"),
                       ({"c/reparam_epsilon": np.array(1.0)}, "missing")):
        with pytest.raises(ValueError, match=match):
            _reparam.gdn_layers(bad, "src")


def test_trained_exponents_use_tfc_minimums():
    offset = 2.0**-18
    raw = {"reparam_alpha": np.array(0.5), "reparam_epsilon": np.array(0.0)}
    alpha, epsilon = _reparam.trained_exponents(raw, offset)
    assert alpha == 1.0                                  # alpha is bounded below by 1
    assert epsilon == pytest.approx(1e-6, rel=1e-9)      # epsilon by 1e-6
    assert _reparam.trained_exponents({}, offset) == (None, None)
