"""Layer objects (cgdn.GDN) and files of saved layers."""
import pickle

import numpy as np
import pytest

import cgdn
from cgdn import _files


def _x(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def test_lazy_build_and_results_match_apply_gdn(rng):
    layer = cgdn.GDN()
    assert not layer.built and layer.channels is None and layer.dtype is None
    with pytest.raises(ValueError, match="not built yet"):
        layer.beta
    x = _x(rng, (2, 5, 5, 4))
    y = layer(x)
    assert layer.built and layer.channels == 4 and layer.dtype == np.float32
    np.testing.assert_array_equal(y, cgdn.apply_gdn(x, layer.beta, layer.gamma))
    np.testing.assert_allclose(layer.beta, 1.0)
    np.testing.assert_allclose(layer.gamma, 0.1 * np.eye(4), atol=1e-7)
    # the first call's dtype decides: float64 input builds float64 variables
    assert cgdn.GDN()(x.astype(np.float64)).dtype == np.float64
    layer64 = cgdn.GDN()
    layer64(x.astype(np.float64))
    assert layer64.dtype == np.float64 and layer64.reparam_beta.dtype == np.float64
    assert cgdn.GDN(3).dtype == np.float32


@pytest.mark.parametrize("settings", [
    {}, {"inverse": True}, {"alpha": 1.0, "epsilon": 1.0},
    {"alpha": 1.0, "epsilon": 1.0, "inverse": True}, {"rectify": True},
    {"data_format": "channels_first"}, {"alpha": 1.5, "epsilon": 0.7, "beta_min": 0.3},
])
def test_settings_are_carried(rng, settings):
    layer = cgdn.GDN(3, **settings)
    layer.reparam_gamma = rng.uniform(0.0, 0.6, (3, 3))
    layer.reparam_beta = rng.uniform(0.0, 1.5, 3)
    shape = (2, 3, 4, 5) if settings.get("data_format") == "channels_first" else (2, 4, 5, 3)
    x = _x(rng, shape, np.float64)
    expected = cgdn.gdn(x, store=layer.store, name=layer.name, reuse=True,
                        **{k: v for k, v in settings.items()})
    np.testing.assert_array_equal(layer(x), expected)
    assert cgdn.GDN(**layer.config).config == layer.config


def test_effective_parameters_are_read_only_and_follow_the_variables(rng):
    layer = cgdn.GDN(2, beta_min=0.5)
    with pytest.raises(ValueError, match="read-only"):
        layer.beta[0] = 3
    layer.reparam_beta = [0.0, 2.0]
    np.testing.assert_allclose(layer.beta, [0.5, 4.0], rtol=1e-6)   # bounded at beta_min
    with pytest.raises(ValueError, match="shape"):
        layer.reparam_gamma = np.eye(3)
    assert set(layer.variables) == {"gdn/reparam_beta", "gdn/reparam_gamma"}


def test_layer_and_gdn_share_variables_in_a_store(rng):
    store = cgdn.ParameterStore()
    x = _x(rng, (1, 3, 3, 2))
    cgdn.gdn(x, name="enc", store=store)
    layer = cgdn.GDN(store=store, name="enc")            # attaches to existing variables
    assert layer.built and layer.channels == 2
    store["enc/reparam_beta"] = [2.0, 3.0]
    np.testing.assert_array_equal(layer(x), cgdn.gdn(x, name="enc", reuse=True, store=store))
    with pytest.raises(ValueError, match="exists in the store with 2 channels, not 5"):
        cgdn.GDN(5, store=store, name="enc")
    # unnamed layers take the first free names of the store, even when built later
    a, b = cgdn.GDN(store=store), cgdn.GDN(store=store)
    b(x)
    a(x)
    assert (b.name, a.name) == ("gdn", "gdn_1")


def test_channel_mismatch_names_layer_counts_and_data_format():
    layer = cgdn.GDN(5, name="g_a.1")
    with pytest.raises(ValueError, match=r"'g_a.1' expects 5 channels on axis 3 "
                                         r"\(channels_last\), got 8") as info:
        layer(np.ones((1, 5, 8, 8)))
    assert "channels_first" in str(info.value)
    with pytest.raises(ValueError) as info:
        layer(np.ones((1, 8, 8, 7)))
    assert "data_format" not in str(info.value)
    nchw = cgdn.GDN(5, data_format="channels_first")
    with pytest.raises(ValueError, match="data_format='channels_last'"):
        nchw(np.ones((1, 8, 8, 5)))


def test_gdn_channel_mismatch_hints_at_data_format():
    store = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 4, 4, 5)), name="g", store=store)
    with pytest.raises(ValueError, match="data_format='channels_first'"):
        cgdn.gdn(np.ones((1, 5, 4, 4)), name="g", reuse=True, store=store)


def test_rank_two_inputs_and_out(rng):
    layer = cgdn.GDN(3, inverse=True)
    x = _x(rng, (7, 3))
    out = np.empty_like(x)
    assert layer(x, out=out, num_threads=1) is out
    np.testing.assert_array_equal(out, cgdn.apply_gdn(x, layer.beta, layer.gamma, inverse=True))


class _FakeTorchTensor:
    """What cgdn needs from a torch tensor that requires grad: NumPy refuses it until
    it is detached."""

    def __init__(self, a, requires_grad=True):
        self.a, self.requires_grad = a, requires_grad

    def detach(self):
        return _FakeTorchTensor(self.a, False)

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad.")
        return self.a


class _DLPackOnly:
    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_array_objects_numpy_can_view(rng):
    x = _x(rng, (2, 3, 3, 4))
    layer = cgdn.GDN(4)
    want = layer(x)
    for obj in (_FakeTorchTensor(x), _DLPackOnly(x), memoryview(x)):
        got = layer(obj)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(cgdn.apply_gdn(obj, layer.beta, layer.gamma), want)


def test_torch_tensor_that_requires_grad():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    layer = cgdn.GDN(4, data_format="channels_first")
    y = layer(x)
    np.testing.assert_array_equal(y, layer(x.detach().numpy()))


def test_bad_arguments():
    for kwargs, exc, match in (
            ({"channels": 0}, ValueError, "channels"), ({"channels": 2.0}, TypeError, "channels"),
            ({"dtype": "int32"}, TypeError, "dtype"), ({"name": "a//b"}, ValueError, "name"),
            ({"alpha": 0}, ValueError, "alpha"), ({"data_format": "NCHW"}, ValueError, "data_format"),
            ({"store": [1]}, TypeError, "store")):
        with pytest.raises(exc, match=match):
            cgdn.GDN(**kwargs)
    store = cgdn.ParameterStore()
    store.create("odd/reparam_beta", np.ones(3))
    store.create("odd/reparam_gamma", np.ones(3))
    with pytest.raises(ValueError, match="not a GDN layer"):
        cgdn.GDN(store=store, name="odd")


def test_trained_exponents_in_the_store_are_used(rng):
    store = cgdn.ParameterStore()
    layer = cgdn.GDN(3, store=store, name="t", dtype="float64")
    store.create("t/reparam_alpha", np.sqrt(np.float32(1.5) + 2.0**-36))
    store.create("t/reparam_epsilon", np.sqrt(np.float32(0.75) + 2.0**-36))
    assert layer.alpha == pytest.approx(1.5) and layer.epsilon == pytest.approx(0.75)
    x = _x(rng, (1, 2, 2, 3), np.float64)
    want = cgdn.apply_gdn(x, layer.beta, layer.gamma, alpha=layer.alpha, epsilon=layer.epsilon)
    np.testing.assert_allclose(layer(x), want, rtol=1e-12)
    np.testing.assert_array_equal(cgdn.gdn(x, name="t", reuse=True, store=store), layer(x))


def test_pickle_keeps_settings_and_values(rng):
    layer = cgdn.GDN(3, inverse=True, beta_min=0.01, name="x")
    layer.reparam_beta = [1.0, 2.0, 3.0]
    copy = pickle.loads(pickle.dumps(layer))
    assert copy.config == layer.config and copy.store is not layer.store
    x = _x(rng, (1, 2, 2, 3))
    np.testing.assert_array_equal(copy(x), layer(x))
    unbuilt = pickle.loads(pickle.dumps(cgdn.GDN(inverse=True)))
    assert not unbuilt.built and unbuilt.inverse


def test_repr_shows_what_differs_from_the_defaults():
    assert repr(cgdn.GDN(4, inverse=True)) == "cgdn.GDN(4, inverse=True, name='gdn')"
    assert repr(cgdn.GDN()) == "cgdn.GDN(None, name='gdn')"


# --- saved layers ---------------------------------------------------------------------

def test_save_and_load_layers_round_trip(rng, tmp_path):
    layers = {"g_a.1": cgdn.GDN(4, beta_min=0.01), "g_s.1": cgdn.GDN(4, inverse=True),
              "h": cgdn.GDN(2, alpha=1.0, epsilon=1.0, dtype="float64",
                            data_format="channels_first")}
    for layer in layers.values():
        layer.reparam_gamma = rng.uniform(0, 0.5, layer.reparam_gamma.shape)
    path = tmp_path / "model.npz"
    cgdn.save_layers(path, layers)
    loaded = cgdn.load_layers(path)
    assert list(loaded) == list(layers)
    for key, layer in layers.items():
        got = loaded[key]
        assert {k: v for k, v in got.config.items() if k != "name"} == \
            {k: v for k, v in layer.config.items() if k != "name"}
        np.testing.assert_array_equal(got.gamma, layer.gamma)
        assert got.gamma.dtype == layer.gamma.dtype
    assert loaded["g_a.1"].store is loaded["h"].store
    # a store file is not a layers file, and back
    with pytest.raises(ValueError, match="no saved layers"):
        store = cgdn.ParameterStore()
        cgdn.gdn(np.ones((1, 2, 2, 2)), store=store)
        store.save(tmp_path / "store.npz")
        cgdn.load_layers(tmp_path / "store.npz")
    assert len(cgdn.ParameterStore.load(path)) == 6


def _assert_same_layer(got, want):
    assert {k: v for k, v in got.config.items() if k != "name"} == \
        {k: v for k, v in want.config.items() if k != "name"}
    np.testing.assert_array_equal(got.reparam_beta, want.reparam_beta)
    np.testing.assert_array_equal(got.reparam_gamma, want.reparam_gamma)


def test_save_layers_list_never_loses_a_layer(rng, tmp_path):
    # unnamed layers (each 'gdn' in its own store) take gdn, gdn_1, ... in list order;
    # named ones keep their names, unnamed ones step around them
    layers = [cgdn.GDN(4), cgdn.GDN(4, inverse=True, beta_min=0.5), cgdn.GDN(3, name="gdn_1"),
              cgdn.GDN(2, alpha=1.0, epsilon=1.0, rectify=True, dtype="float64",
                       data_format="channels_first")]
    for layer in layers:
        layer.reparam_beta = rng.uniform(1, 2, layer.channels)
    path = tmp_path / "list.npz"
    cgdn.save_layers(path, layers)
    loaded = cgdn.load_layers(path)
    assert list(loaded) == ["gdn", "gdn_2", "gdn_1", "gdn_3"]
    for got, want in zip(loaded.values(), layers):
        _assert_same_layer(got, want)
        assert got.name in loaded


def test_save_layers_refuses_names_that_would_collide(tmp_path):
    a, b = cgdn.GDN(2, name="enc"), cgdn.GDN(2, name="enc")
    with pytest.raises(ValueError, match=r"named alike.*\['enc'\]"):
        cgdn.save_layers(tmp_path / "a.npz", [a, b, cgdn.GDN(2)])
    with pytest.raises(ValueError, match=r"layers\[0\] and layers\[1\] are the same layer"):
        cgdn.save_layers(tmp_path / "a.npz", [a, a])
    with pytest.raises(ValueError, match=r"'g.1' and 'g/1' both map to scope 'g/1'"):
        cgdn.save_layers(tmp_path / "a.npz", {"g.1": a, "g/1": b})
    assert not (tmp_path / "a.npz").exists()


def test_save_layers_dict_and_shared_store_round_trip(rng, tmp_path):
    store = cgdn.ParameterStore()
    shared = [cgdn.GDN(3, store=store), cgdn.GDN(3, store=store, inverse=True)]
    assert [layer.name for layer in shared] == ["gdn", "gdn_1"]
    cgdn.save_layers(tmp_path / "s.npz", shared)
    loaded = cgdn.load_layers(tmp_path / "s.npz")
    assert list(loaded) == ["gdn", "gdn_1"]
    for got, want in zip(loaded.values(), shared):
        _assert_same_layer(got, want)
    mixed = {"g_a.0": cgdn.GDN(3), "g_s.0": cgdn.GDN(3, inverse=True), "x": shared[1]}
    cgdn.save_layers(tmp_path / "d.npz", mixed)
    loaded = cgdn.load_layers(tmp_path / "d.npz")
    assert list(loaded) == list(mixed)
    for key in mixed:
        _assert_same_layer(loaded[key], mixed[key])


def test_save_layers_refusals(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        cgdn.save_layers(tmp_path / "a.npz", [cgdn.GDN()])
    with pytest.raises(TypeError, match="not a cgdn.GDN"):
        cgdn.save_layers(tmp_path / "a.npz", {"a": object()})
    with pytest.raises(ValueError, match="no layers"):
        cgdn.save_layers(tmp_path / "a.npz", {})


@pytest.mark.parametrize("text,match", [
    ("[" * 100000 + "]" * 100000, "not valid JSON|map layer names"),
    ('{"a": 1}', "map layer names"),
    ('{"a": {"name": "a", "channels": 2, "evil": 1}}', "unknown settings"),
    ('{"a": {"name": "zz", "channels": 2}}', "no variables"),
    ('{"a": {"name": "a", "channels": 3}}', "3"),
    ('{"a": {"name": "a", "alpha": "x"}}', "alpha"),
    ("not json", "not valid JSON"),
])
def test_hostile_layer_settings_are_refused(tmp_path, text, match):
    arrays = {"a/reparam_beta": np.ones(2), "a/reparam_gamma": np.eye(2)}
    path = tmp_path / "bad.npz"
    _files.write_parameter_file(path, arrays, [])
    # rewrite with the given JSON text as the layers' entry
    with np.load(path) as f:
        payload = {k: f[k] for k in f.files}
    payload[_files.LAYERS_KEY] = np.array(text)
    with open(path, "wb") as f:
        np.savez(f, **payload)
    with pytest.raises(ValueError, match=match):
        cgdn.load_layers(path)
