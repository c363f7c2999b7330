"""GDN as a density model: gdn_inverse, gdn_logdet, gdn_vjp and gdn_grads."""
import math
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cgdn

MODES = [  # (alpha, epsilon, rectify)
    (2.0, 0.5, False), (1.0, 1.0, False), (1.5, 0.7, False), (2.0, 0.5, True),
    (1.0, 1.0, True),
]


def _params(rng, c, scale=0.5):
    beta = rng.uniform(0.5, 1.5, c)
    gamma = rng.uniform(0.0, scale / c, (c, c)) + np.diag(rng.uniform(0.05, 0.3, c))
    gamma[0, -1] += 0.2   # not symmetric
    return beta, gamma


def _jacobian_fd(x, beta, gamma, h=1e-6, **kw):
    """(P, C, C) Jacobians dy_i/dx_k by central differences, float64."""
    p, c = x.shape
    jac = np.empty((p, c, c))
    for k in range(c):
        step = np.zeros(c)
        step[k] = h
        jac[:, :, k] = (cgdn.apply_gdn(x + step, beta, gamma, **kw)
                        - cgdn.apply_gdn(x - step, beta, gamma, **kw)) / (2 * h)
    return jac


@pytest.mark.parametrize("alpha,epsilon,rectify", MODES)
@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_inverse_round_trips(rng, alpha, epsilon, rectify, layout, dtype, rtol):
    c = 5
    beta, gamma = _params(rng, c)
    x = rng.standard_normal((3, 4, 6, c)) * 1.5
    if rectify:
        x = np.abs(x) + 0.01        # the invertible part: positive inputs
    if layout == "channels_first":
        x = np.moveaxis(x, -1, 1)
    x = x.astype(dtype)
    kw = dict(rectify=rectify, alpha=alpha, epsilon=epsilon, data_format=layout)
    y = cgdn.apply_gdn(x.astype(np.float64), beta, gamma, **kw).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = cgdn.gdn_inverse(y, beta, gamma, **kw)
    assert back.dtype == dtype and back.shape == x.shape
    np.testing.assert_allclose(back, x, rtol=rtol, atol=rtol * np.abs(x).max())


def test_inverse_is_not_one_igdn_step(rng):
    beta, gamma = _params(rng, 4)
    x = rng.standard_normal((50, 4)) * 2
    y = cgdn.apply_gdn(x, beta, gamma)
    one_step = cgdn.apply_gdn(y, beta, gamma, inverse=True)
    assert np.abs(one_step - x).max() > 1e-3
    np.testing.assert_allclose(cgdn.gdn_inverse(y, beta, gamma), x, rtol=1e-10, atol=1e-12)


def test_saturated_outputs_are_nan_with_one_warning():
    # one channel, classic GDN: |y| < 1/sqrt(gamma) = 2
    y = np.array([[0.5], [1.9], [2.5], [-3.0], [0.0]])
    with pytest.warns(cgdn.ConvergenceWarning, match="2 of 5 positions") as record:
        x = cgdn.gdn_inverse(y, [1.0], [[0.25]])
    assert len(record) == 1
    assert np.isnan(x[2:4]).all() and np.isfinite(x[[0, 1, 4]]).all()
    np.testing.assert_allclose(x[[0, 1, 4], 0], y[[0, 1, 4], 0] / np.sqrt(1 - 0.25 * y[[0, 1, 4], 0]**2),
                               rtol=1e-12)
    assert issubclass(cgdn.ConvergenceWarning, RuntimeWarning)


def test_non_convergence_is_reported(rng):
    beta, gamma = _params(rng, 3)
    y = cgdn.apply_gdn(rng.standard_normal((20, 3)) * 3, beta, gamma)
    with pytest.warns(cgdn.ConvergenceWarning, match="max_iter=1"):
        x = cgdn.gdn_inverse(y, beta, gamma, max_iter=1, tol=1e-15)
    assert np.isnan(x).any()


def test_rectified_inverse_needs_non_negative_outputs():
    with pytest.warns(cgdn.ConvergenceWarning, match="1 of 2"):
        x = cgdn.gdn_inverse(np.array([[0.5, 0.0], [0.5, -0.1]]), [1.0, 1.0],
                             0.1 * np.eye(2), rectify=True)
    assert x[0, 1] == 0 and np.isnan(x[1]).all()


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("alpha,epsilon,rectify", MODES)
def test_logdet_matches_finite_differences(rng, inverse, alpha, epsilon, rectify):
    c = 4
    beta, gamma = _params(rng, c)
    x = rng.standard_normal((30, c)) + 0.3
    if rectify:
        x = np.abs(x) + 0.05
    kw = dict(inverse=inverse, rectify=rectify, alpha=alpha, epsilon=epsilon)
    want = np.linalg.slogdet(_jacobian_fd(x, beta, gamma, **kw))[1]
    np.testing.assert_allclose(cgdn.gdn_logdet(x, beta, gamma, **kw), want, rtol=1e-6,
                               atol=1e-7)


def test_logdet_one_channel_closed_form_and_layouts(rng):
    x = rng.standard_normal((2, 1, 3, 5))       # channels_first, one channel
    got = cgdn.gdn_logdet(x, [0.7], [[0.4]], data_format="channels_first")
    assert got.shape == (2, 3, 5)
    # y = x (b + g x^2)^(-1/2): dy/dx = b (b + g x^2)^(-3/2)
    np.testing.assert_allclose(got, np.log(0.7) - 1.5 * np.log(0.7 + 0.4 * x[:, 0] ** 2),
                               rtol=1e-13)
    assert cgdn.gdn_logdet(x.astype(np.float32), [0.7], [[0.4]],
                           data_format="channels_first").dtype == np.float32
    rect = cgdn.gdn_logdet(np.array([[1.0, -1.0], [1.0, 2.0]]), [1, 1], 0.1 * np.eye(2),
                           rectify=True)
    assert rect[0] == -np.inf and np.isfinite(rect[1])


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("alpha,epsilon,rectify", MODES)
@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
def test_vjp_matches_finite_differences(rng, inverse, alpha, epsilon, rectify, layout):
    c = 3
    beta, gamma = _params(rng, c)
    x = rng.standard_normal((2, 3, 2, c)) + 0.2
    x[np.abs(x) < 0.05] = 0.3      # keep away from the kinks of |x| and max(x, 0)
    if layout == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    g = rng.standard_normal(x.shape)
    kw = dict(inverse=inverse, rectify=rectify, alpha=alpha, epsilon=epsilon, data_format=layout)
    gx, gb, gg = cgdn.gdn_vjp(x, beta, gamma, g, **kw)
    loss = lambda x_, b_, g_: float(np.sum(cgdn.apply_gdn(x_, b_, g_, **kw) * g))  # noqa: E731
    h = 1e-6
    fd_x = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd_x[idx] = (loss(x + e, beta, gamma) - loss(x - e, beta, gamma)) / (2 * h)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-6, atol=1e-8)
    fd_b = [(loss(x, beta + h * e, gamma) - loss(x, beta - h * e, gamma)) / (2 * h)
            for e in np.eye(c)]
    np.testing.assert_allclose(gb, fd_b, rtol=1e-6, atol=1e-8)
    fd_g = np.zeros((c, c))
    for j in range(c):
        for i in range(c):
            e = np.zeros((c, c))
            e[j, i] = h
            fd_g[j, i] = (loss(x, beta, gamma + e) - loss(x, beta, gamma - e)) / (2 * h)
    np.testing.assert_allclose(gg, fd_g, rtol=1e-6, atol=1e-8)


def test_results_do_not_depend_on_the_thread_count(rng):
    beta, gamma = _params(rng, 6)
    x = rng.standard_normal((5000, 6))
    g = rng.standard_normal(x.shape)
    y = cgdn.apply_gdn(x, beta, gamma)
    one = [cgdn.gdn_vjp(x, beta, gamma, g, num_threads=1), cgdn.gdn_logdet(x, beta, gamma, num_threads=1),
           cgdn.gdn_inverse(y, beta, gamma, num_threads=1)]
    two = [cgdn.gdn_vjp(x, beta, gamma, g, num_threads=2), cgdn.gdn_logdet(x, beta, gamma, num_threads=2),
           cgdn.gdn_inverse(y, beta, gamma, num_threads=2)]
    for a, b in zip(one[0], two[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[2], two[2])


@pytest.mark.parametrize("where,grad_sign,passes", [
    ("above", +1, True), ("above", -1, True),    # above the bound: always
    ("at", +1, True), ("at", -1, True),          # at the bound: always (v >= bound)
    ("below", +1, False), ("below", -1, True),   # below: only when it points the value up
])
def test_lower_bound_gradient_rule(where, grad_sign, passes):
    beta_min = 1e-2
    bound = math.sqrt(beta_min + 2.0**-36)       # as the reparameterization computes it
    raw = {"above": 0.5, "at": bound, "below": -0.5}[where]
    store = cgdn.ParameterStore()
    x = np.ones((1, 1, 1, 1))
    cgdn.gdn(x, name="g", store=store, beta_min=beta_min)
    store["g/reparam_beta"] = [raw]
    # dL/dy = -grad_sign: for x > 0, dL/d(effective beta) has the sign of grad_sign
    _, grads = cgdn.gdn_grads(x, -grad_sign * np.ones_like(x), name="g", store=store,
                              beta_min=beta_min)
    got = grads["g/reparam_beta"][0]
    if passes:
        assert got != 0 and np.sign(got) == grad_sign
    else:
        assert got == 0


def test_store_gradients_match_finite_differences(rng):
    store = cgdn.ParameterStore()
    x = rng.standard_normal((2, 3, 3, 4))
    cgdn.gdn(x, name="g", store=store, inverse=True)
    store["g/reparam_gamma"] = rng.uniform(0.1, 0.5, (4, 4))
    g = rng.standard_normal(x.shape)

    def loss():
        return float(np.sum(cgdn.gdn(x, name="g", reuse=True, store=store, inverse=True) * g))

    _, grads = cgdn.gdn_grads(x, g, name="g", store=store, inverse=True)
    raw = store["g/reparam_gamma"]
    h = 1e-6
    for j, i in [(0, 0), (1, 3), (3, 2)]:
        plus, minus = raw.copy(), raw.copy()
        plus[j, i] += h
        minus[j, i] -= h
        store["g/reparam_gamma"] = plus
        up = loss()
        store["g/reparam_gamma"] = minus
        down = loss()
        store["g/reparam_gamma"] = raw
        assert grads["g/reparam_gamma"][j, i] == pytest.approx((up - down) / (2 * h), rel=1e-6)


def test_density_errors(rng):
    beta, gamma = np.ones(2), np.eye(2)
    with pytest.raises(ValueError, match="grad_outputs must have the inputs' shape"):
        cgdn.gdn_vjp(np.ones((3, 2)), beta, gamma, np.ones((3, 3)))
    with pytest.raises(ValueError, match="max_iter"):
        cgdn.gdn_inverse(np.ones((3, 2)), beta, gamma, max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        cgdn.gdn_inverse(np.ones((3, 2)), beta, gamma, tol=-1)
    with pytest.raises(ValueError, match="no variable g/reparam_beta"):
        cgdn.gdn_grads(np.ones((1, 2, 2, 2)), np.ones((1, 2, 2, 2)), name="g",
                       store=cgdn.ParameterStore())
    with pytest.raises(ValueError, match="gamma must have shape"):
        cgdn.gdn_logdet(np.ones((3, 2)), beta, np.eye(3))


def test_density_example_lowers_the_nll(tmp_path):
    script = pathlib.Path(__file__).resolve().parent.parent / "examples" / "density_model.py"
    if not script.exists():
        pytest.skip("the examples folder is not next to the tests (installed package)")
    out = subprocess.run([sys.executable, str(script), "--samples", "4000", "--steps", "60",
                          "--figure", str(tmp_path / "fig.png")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    before = float(re.search(r"at initialization: ([\d.]+)", out).group(1))
    after = float(re.search(r"Adam steps: +([\d.]+)", out).group(1))
    assert after < before - 0.05
    assert "inverse round trip" in out
