"""gdn(): TF contrib semantics, naming, reuse, regularizers, golden files through the store."""
import numpy as np
import pytest

import cgdn
from cgdn import params
from conftest import GOLDEN_FILES, assert_close, reference_gdn

FORMATS = ["channels_last", "channels_first"]
SHAPES = {3: (2, 9, 5), 4: (2, 6, 7, 5), 5: (1, 3, 4, 5, 5), 6: (2, 2, 3, 2, 3, 5)}
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-10)}


@pytest.fixture(autouse=True)
def clean_default_store():
    cgdn.get_default_store().clear()
    yield
    cgdn.get_default_store().clear()


@pytest.fixture
def store():
    return cgdn.ParameterStore()


def _load(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


TF_FILES = [p for p in GOLDEN_FILES if p.name.startswith("tf_")]


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.stem)
def test_golden_through_gdn(path, store):
    case = _load(path)
    x = case["x"]
    kwargs = dict(inverse=bool(case["inverse"]), beta_min=float(case["beta_min"]),
                  reparam_offset=float(case["reparam_offset"]),
                  gamma_init=float(case["gamma_init"]),
                  data_format=str(case["data_format"]), rectify=bool(case["rectify"]),
                  alpha=float(case["alpha"]), epsilon=float(case["epsilon"]))
    cgdn.gdn(x, name="layer", store=store, **kwargs)  # creates the variables
    if bool(case["params_assigned"]):
        store["layer/reparam_beta"] = case["reparam_beta"]
        store["layer/reparam_gamma"] = case["reparam_gamma"]
    else:  # the layer's own initial values are TF's, bit for bit
        np.testing.assert_array_equal(store["layer/reparam_beta"], case["reparam_beta"])
        np.testing.assert_array_equal(store["layer/reparam_gamma"], case["reparam_gamma"])
    dtype = x.dtype
    beta = params.reparam_value(store["layer/reparam_beta"], kwargs["beta_min"],
                                kwargs["reparam_offset"], dtype)
    gamma = params.reparam_value(store["layer/reparam_gamma"], 0.0,
                                 kwargs["reparam_offset"], dtype)
    np.testing.assert_array_equal(beta, case["beta"])     # bit-exact effective parameters
    np.testing.assert_array_equal(gamma, case["gamma"])
    y = cgdn.gdn(x, name="layer", reuse=True, store=store, **kwargs)
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y, case["y"], **TOL[dtype.type])


@pytest.mark.parametrize("rank", sorted(SHAPES))
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_defaults_closed_form(rng, rank, data_format, dtype):
    x = (rng.standard_normal(SHAPES[rank]) * 3).astype(dtype)
    y = cgdn.gdn(x, data_format=data_format)
    assert y.dtype == dtype
    assert_close(y, x / np.sqrt(1 + 0.1 * x.astype(np.float64) ** 2), dtype)
    yi = cgdn.gdn(x, inverse=True, data_format=data_format)
    assert_close(yi, x * np.sqrt(1 + 0.1 * x.astype(np.float64) ** 2), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma_init", [0.1, 0.0, 0.5])
def test_initial_effective_parameters_exact(store, dtype, gamma_init):
    cgdn.gdn(np.ones((1, 2, 2, 7), dtype), gamma_init=gamma_init, store=store)
    assert store["gdn/reparam_beta"].dtype == dtype
    beta = params.reparam_value(store["gdn/reparam_beta"], 1e-6, 2**-18, dtype)
    gamma = params.reparam_value(store["gdn/reparam_gamma"], 0.0, 2**-18, dtype)
    np.testing.assert_array_equal(beta, np.ones(7, dtype))
    off_diagonal = ~np.eye(7, dtype=bool)
    assert np.all(gamma[off_diagonal] == 0)
    if gamma_init in (0.0, 0.1):  # exact, as the README promises for the defaults
        np.testing.assert_array_equal(np.diag(gamma), np.full(7, gamma_init, dtype))
    else:  # other values "up to rounding", as in TensorFlow
        np.testing.assert_allclose(np.diag(gamma), gamma_init, rtol=2e-7)


def test_float16_inputs_use_float32_variables(store):
    x = np.linspace(-2, 2, 48, dtype=np.float16).reshape(1, 4, 4, 3)
    y = cgdn.gdn(x, store=store)
    assert y.dtype == np.float16
    assert store["gdn/reparam_gamma"].dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 3), (4,), ()])
def test_rank_below_three_refused(shape, store):
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        cgdn.gdn(np.ones(shape, np.float32), store=store)
    assert len(store) == 0


def test_bad_data_format_refused(store):
    with pytest.raises(ValueError, match="data_format"):
        cgdn.gdn(np.ones((1, 2, 2, 3)), data_format="NHWC", store=store)


def test_default_names_and_scopes(store):
    x = np.ones((1, 2, 2, 3))
    cgdn.gdn(x, store=store)
    cgdn.gdn(x, store=store)
    with cgdn.variable_scope("encoder"):
        cgdn.gdn(x, store=store)
        with cgdn.variable_scope("block"):
            cgdn.gdn(x, store=store, name="norm")
        cgdn.gdn(x, store=store)
    assert list(store) == [
        "gdn/reparam_beta", "gdn/reparam_gamma", "gdn_1/reparam_beta", "gdn_1/reparam_gamma",
        "encoder/gdn/reparam_beta", "encoder/gdn/reparam_gamma",
        "encoder/block/norm/reparam_beta", "encoder/block/norm/reparam_gamma",
        "encoder/gdn_1/reparam_beta", "encoder/gdn_1/reparam_gamma",
    ]
    # explicit names count: a default name never collides with them
    cgdn.gdn(x, store=store, name="gdn_2")
    cgdn.gdn(x, store=store)
    assert "gdn_3/reparam_beta" in store


def test_names_are_per_store():
    a, b = cgdn.ParameterStore(), cgdn.ParameterStore()
    x = np.ones((1, 2, 2, 3))
    cgdn.gdn(x, store=a)
    cgdn.gdn(x, store=b)
    assert list(a) == list(b) == ["gdn/reparam_beta", "gdn/reparam_gamma"]


def test_reuse_rules(store):
    x = np.ones((1, 2, 2, 3))
    cgdn.gdn(x, name="g", store=store)
    for reuse in (None, False):
        with pytest.raises(ValueError, match=r"g/reparam_beta already exists.*reuse=True"):
            cgdn.gdn(x, name="g", reuse=reuse, store=store)
    with pytest.raises(ValueError, match=r"h/reparam_beta does not exist"):
        cgdn.gdn(x, name="h", reuse=True, store=store)
    with pytest.raises(ValueError, match="needs a layer name"):
        cgdn.gdn(x, reuse=True, store=store)
    with pytest.raises(ValueError, match=r"\(3,\).*4 channels need \(4,\)"):
        cgdn.gdn(np.ones((1, 2, 2, 4)), name="g", reuse=True, store=store)
    with pytest.raises(ValueError, match=r"\(3,\).*4 channels"):
        cgdn.gdn(np.ones((1, 2, 2, 4)), name="g", reuse=cgdn.AUTO_REUSE, store=store)
    assert list(store) == ["g/reparam_beta", "g/reparam_gamma"]
    cgdn.gdn(x, name="g", reuse=True, store=store)
    cgdn.gdn(x, name="g", reuse=cgdn.AUTO_REUSE, store=store)
    cgdn.gdn(x, name="new", reuse=cgdn.AUTO_REUSE, store=store)
    assert len(store) == 4


def test_scope_reuse_is_inherited(store):
    x = np.ones((1, 2, 2, 3))
    with cgdn.variable_scope("enc"):
        cgdn.gdn(x, name="g", store=store)
    with cgdn.variable_scope("enc", reuse=True):
        cgdn.gdn(x, name="g", store=store)                 # shares
        cgdn.gdn(x, name="g", reuse=False, store=store)    # cannot turn reuse off
        with pytest.raises(ValueError, match="does not exist"):
            cgdn.gdn(x, name="other", store=store)
    with cgdn.variable_scope("top", reuse=cgdn.AUTO_REUSE):
        with cgdn.variable_scope("inner"):
            cgdn.gdn(x, name="g", store=store)
            cgdn.gdn(x, name="g", store=store)
    assert len(store) == 4


def test_assigned_values_are_used_at_once(store, rng):
    x = rng.standard_normal((2, 3, 3, 4))
    y0 = cgdn.gdn(x, name="g", store=store)
    store["g/reparam_beta"] = np.full(4, 2.0)
    y1 = cgdn.gdn(x, name="g", reuse=True, store=store)
    assert not np.allclose(y0, y1)
    assert_close(y1, reference_gdn(x, np.full(4, 4.0 - 2.0**-36), 0.1 * np.eye(4)),
                 np.float64)


def test_beta_min_bounds_effective_beta(store, rng):
    x = rng.standard_normal((1, 3, 3, 2))
    cgdn.gdn(x, name="g", store=store)
    store["g/reparam_beta"] = [-5.0, 0.0]
    store["g/reparam_gamma"] = [[-1.0, 0.0], [0.0, -3.0]]
    y = cgdn.gdn(x, name="g", reuse=True, beta_min=0.25, store=store)
    assert_close(y, x / np.sqrt(0.25), np.float64)


def test_trainable(store):
    x = np.ones((1, 2, 2, 3))
    cgdn.gdn(x, name="t", store=store)
    cgdn.gdn(x, name="f", trainable=False, store=store)
    assert store.trainable_variables == ["t/reparam_beta", "t/reparam_gamma"]
    assert "f/reparam_beta" in store


def test_activity_regularizer(store, rng):
    x = rng.standard_normal((4, 3, 3, 2))
    with cgdn.variable_scope("enc"):
        y = cgdn.gdn(x, activity_regularizer=lambda t: np.sum(np.abs(t)), store=store)
    (loss,) = store.losses
    assert loss == pytest.approx(np.sum(np.abs(y)) / 4)
    assert loss.scope == "enc/gdn"
    assert sum(store.losses) == pytest.approx(float(loss))
    cgdn.gdn(x[:0], name="enc/gdn", reuse=True, activity_regularizer=np.sum, store=store)
    assert len(store.losses) == 1   # empty batch: nothing appended
    store.clear_losses()
    assert store.losses == []


def test_failing_regularizer_leaves_store_unchanged(store):
    def bad(_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cgdn.gdn(np.ones((1, 2, 2, 3)), activity_regularizer=bad, store=store)
    assert len(store) == 0 and store.losses == []
    with pytest.raises(ValueError, match="real scalar"):
        cgdn.gdn(np.ones((1, 2, 2, 3)), activity_regularizer=lambda t: t, store=store)
    assert len(store) == 0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(beta_min=-1e-3), ValueError, "beta_min"),
    (dict(reparam_offset=0), ValueError, "reparam_offset"),
    (dict(reparam_offset=-1.0), ValueError, "reparam_offset"),
    (dict(gamma_init=-0.1), ValueError, "gamma_init"),
    (dict(gamma_init=np.nan), ValueError, "gamma_init"),
    (dict(alpha=0), ValueError, "alpha"),
    (dict(epsilon=-1), ValueError, "epsilon"),
    (dict(data_format="NCHW"), ValueError, "data_format"),
    (dict(inverse="yes"), TypeError, "inverse"),
    (dict(trainable=None), TypeError, "trainable"),
    (dict(activity_regularizer=3), TypeError, "activity_regularizer"),
    (dict(name=""), ValueError, "name"),
    (dict(name="a b"), ValueError, "name"),
    (dict(name=3), TypeError, "name"),
    (dict(reuse="yes"), TypeError, "reuse"),
    (dict(store=[]), TypeError, "store"),
    (dict(store="params"), TypeError, "store"),
    (dict(store=object()), TypeError, "store"),
    (dict(store={}, activity_regularizer=np.sum), TypeError, "add_loss"),
    (dict(out=np.empty((1, 2, 2, 3), np.float32)), TypeError, "out"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(inputs=np.ones((1, 2, 2, 3), np.int32)), TypeError, "astype"),
    (dict(inputs=np.ones((1, 2, 2, 0))), ValueError, "channel"),
])
def test_invalid_arguments_create_nothing(kwargs, exc, match):
    store = cgdn.get_default_store()
    inputs = kwargs.pop("inputs", np.ones((1, 2, 2, 3)))
    with pytest.raises(exc, match=match):
        cgdn.gdn(inputs, **kwargs)
    assert len(store) == 0 and store.losses == []


def test_dtype_of_stored_variables_follows_first_use(store, rng):
    x32 = rng.standard_normal((1, 3, 3, 4)).astype(np.float32)
    cgdn.gdn(x32, name="g", store=store)
    y64 = cgdn.gdn(x32.astype(np.float64), name="g", reuse=True, store=store)
    assert y64.dtype == np.float64
    assert_close(y64, x32 / np.sqrt(1 + 0.1 * x32.astype(np.float64) ** 2), np.float32)


def test_in_place_and_threads(store, rng):
    x = rng.standard_normal((2, 16, 16, 24)).astype(np.float32)
    expected = cgdn.gdn(x, name="g", store=store, num_threads=1)
    buf = x.copy()
    assert cgdn.gdn(buf, name="g", reuse=True, store=store, out=buf, num_threads=2) is buf
    np.testing.assert_array_equal(buf, expected)
