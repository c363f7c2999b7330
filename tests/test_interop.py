"""Model interop (cgdn/_interop.py): importers of TF variables and CompressAI state dicts,
the export back, and one-call conversion of CompressAI modules and tensorflow-compression
layers, with stand-ins that have the exact attribute names, state-dict keys and buffer
shapes of CompressAI 1.2.8 and tensorflow-compression 2.14.1 (torch and TensorFlow are not
needed; an optional test uses torch when installed)."""
import math

import numpy as np
import pytest

import cgdn
from cgdn import params
from conftest import GOLDEN_FILES


def _non_symmetric(c, rng):
    g = rng.uniform(0.0, 1.0, (c, c))
    g[0, -1], g[-1, 0] = 0.9, 0.01
    return g


def test_import_tf_variables(rng):
    store = cgdn.ParameterStore()
    gamma = _non_symmetric(4, rng)
    ckpt = {
        "enc/gdn_0/reparam_beta:0": np.full(4, 1.1),
        "enc/gdn_0/reparam_gamma:0": gamma,
        "enc/conv/kernel:0": np.zeros((3, 3, 4, 4)),
        "dec/igdn/reparam_beta": np.ones(2, np.float32),
        "dec/igdn/reparam_gamma": np.eye(2, dtype=np.float32),
    }
    assert cgdn.import_tf_variables(ckpt, store) == ["enc/gdn_0", "dec/igdn"]
    np.testing.assert_array_equal(store["enc/gdn_0/reparam_gamma"], gamma)  # no transpose
    assert store["dec/igdn/reparam_beta"].dtype == np.float32
    assert "enc/conv/kernel" not in store
    with pytest.raises(ValueError, match="reparam_gamma is missing"):
        cgdn.import_tf_variables({"x/reparam_beta": np.ones(2)}, store)
    with pytest.raises(ValueError, match="cannot import"):
        cgdn.import_tf_variables({"dec/igdn/reparam_beta": np.ones(3),
                                  "dec/igdn/reparam_gamma": np.eye(3)}, store)
    np.testing.assert_array_equal(store["dec/igdn/reparam_beta"], np.ones(2))


def _compressai_layer(prefix, c, rng, beta_min=1e-6, offset=2.0**-18, dtype=np.float32):
    pedestal = offset**2
    return {
        f"{prefix}.beta": rng.uniform(0.5, 1.5, c).astype(dtype),
        f"{prefix}.gamma": _non_symmetric(c, rng).astype(dtype),
        f"{prefix}.beta_reparam.pedestal": np.array(pedestal, dtype),
        f"{prefix}.beta_reparam.lower_bound.bound": np.array((beta_min + pedestal) ** 0.5,
                                                             dtype),
        f"{prefix}.gamma_reparam.pedestal": np.array(pedestal, dtype),
        f"{prefix}.gamma_reparam.lower_bound.bound": np.array(pedestal**0.5, dtype),
    }


def test_import_compressai_whole_model(rng):
    sd = {"g_a.0.weight": np.zeros((8, 3, 5, 5)), "g_a.0.bias": np.zeros(8)}
    for p in ("g_a.1", "g_a.3", "g_s.1"):
        sd.update(_compressai_layer(p, 8, rng))
    sd.update(_compressai_layer("g_a.5", 4, rng, beta_min=1e-3, offset=2.0**-10))
    store = cgdn.ParameterStore()
    report = cgdn.import_compressai(sd, store, prefix="model/")
    assert sorted(report) == ["model/g_a/1", "model/g_a/3", "model/g_a/5", "model/g_s/1"]
    assert report["model/g_a/1"] == {"beta_min": 1e-6, "reparam_offset": 2.0**-18,
                                     "n_channels": 8}
    assert report["model/g_a/5"]["beta_min"] == pytest.approx(1e-3, rel=1e-6)
    assert report["model/g_a/5"]["reparam_offset"] == 2.0**-10
    np.testing.assert_array_equal(store["model/g_a/3/reparam_gamma"], sd["g_a.3.gamma"].T)
    assert len(store) == 8


def test_compressai_path_matches_pytorch_golden(rng):
    # The golden files hold effective parameters; build a state dict whose raw values
    # give them, import it, and check gdn() reproduces PyTorch's output.
    for path in [p for p in GOLDEN_FILES if p.name.startswith("torch_")]:
        with np.load(path) as f:
            case = {k: f[k] for k in f.files}
        offset = 2.0**-18
        sd = {
            "g.beta": params.reparam_init(case["beta"], offset, np.float64),
            "g.gamma": params.reparam_init(case["gamma_torch"], offset, np.float64),
        }
        store = cgdn.ParameterStore()
        cgdn.import_compressai(sd, store)
        y = cgdn.gdn(case["x"], name="g", reuse=True, inverse=bool(case["inverse"]),
                     data_format="channels_first", store=store)
        np.testing.assert_allclose(y, case["y"], rtol=1e-5, atol=1e-6)


def test_import_compressai_accepts_tensor_like_objects(rng):
    class FakeTensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def __array__(self, dtype=None, copy=None):
            return self.a

    sd = {k: FakeTensor(v) for k, v in _compressai_layer("gdn", 3, rng).items()}
    store = cgdn.ParameterStore()
    cgdn.import_compressai(sd, store)
    np.testing.assert_array_equal(store["gdn/reparam_gamma"], sd["gdn.gamma"].a.T)


def test_import_compressai_refusals(rng):
    store = cgdn.ParameterStore()
    bad = _compressai_layer("x", 3, rng)
    bad["x.gamma"] = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"beta must be \(C,\)"):
        cgdn.import_compressai(bad, store)
    bad = _compressai_layer("x", 3, rng)
    bad["x.gamma_reparam.pedestal"] = np.array(1e-3, np.float32)
    with pytest.raises(ValueError, match="pedestals differ"):
        cgdn.import_compressai(bad, store)
    bad = _compressai_layer("x", 3, rng)
    bad["x.beta"][1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        cgdn.import_compressai(bad, store)
    assert len(store) == 0


def test_export_import_round_trip_is_exact(rng):
    store = cgdn.ParameterStore()
    sd = {}
    for p, c, dtype in (("g_a.1", 5, np.float32), ("g_s.2", 3, np.float64)):
        sd.update(_compressai_layer(p, c, rng, dtype=dtype))
    report = cgdn.import_compressai(sd, store)
    with pytest.raises(ValueError, match=r"bound of layer 'g_a/1' is not known.*beta_min="):
        cgdn.export_compressai(store)      # a store holds raw variables, not the bounds
    exported = cgdn.export_compressai(store, beta_min=report)
    for key, value in sd.items():
        np.testing.assert_array_equal(exported[key], value)
        assert exported[key].dtype == value.dtype
    again = cgdn.ParameterStore()
    cgdn.import_compressai(exported, again)
    for name in store:
        np.testing.assert_array_equal(again[name], store[name])
    with pytest.raises(ValueError, match="no GDN layer"):
        cgdn.export_compressai(store, scopes=["nope"], beta_min=1e-6)


def test_store_round_trip_keeps_each_layers_bound(rng):
    """An IGDN layer with beta_min=1e-2 through import_compressai and a store comes back
    with its own bound (0.1), not the default's (0.001), and so computes the same."""
    source = cgdn.export_compressai({"g_s.1": cgdn.GDN(8, inverse=True, beta_min=1e-2,
                                                        data_format="channels_first"),
                                     "g_a.1": cgdn.GDN(8)})
    source["g_s.1.beta"] = np.full(8, 0.05, np.float32)      # raw beta under the bound
    store = cgdn.ParameterStore()
    report = cgdn.import_compressai(source, store)
    back = cgdn.export_compressai(store, beta_min=report)
    for key, value in source.items():
        np.testing.assert_array_equal(back[key], value)
    assert back["g_s.1.beta_reparam.lower_bound.bound"][0] == np.float32(0.1)
    per_layer = cgdn.export_compressai(store, beta_min={"g_s/1": 1e-2, "g_a/1": 1e-6})
    for key, value in source.items():
        np.testing.assert_array_equal(per_layer[key], value)
    with pytest.raises(ValueError, match="'g_a/1' is not known"):
        cgdn.export_compressai(store, beta_min={"g_s/1": 1e-2})


# --- one-call conversion ------------------------------------------------------------

OFFSET = 2.0**-18
PEDESTAL = OFFSET**2


# --- CompressAI stand-ins (compressai/layers/gdn.py, compressai/ops/parametrizers.py) ---

class Tensor:
    """The parts of torch.Tensor / nn.Parameter that a converter may touch."""

    def __init__(self, a, requires_grad=False):
        self.a = np.asarray(a)
        self.requires_grad = requires_grad
        self.shape = self.a.shape

    def detach(self):
        return Tensor(self.a)

    def cpu(self):
        return self

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad.")
        return self.a


class Module:
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in vars(self).items():
            if isinstance(child, Module):
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)
            elif isinstance(child, list):
                for i, m in enumerate(child):
                    if isinstance(m, Module):
                        yield from m.named_modules(f"{prefix}.{name}.{i}" if prefix
                                                   else f"{name}.{i}")

    def state_dict(self):
        result = {}
        for path, module in self.named_modules():
            for key, value in vars(module).items():
                if isinstance(value, Tensor):
                    result[f"{path}.{key}" if path else key] = value
        return result

    def load_state_dict(self, state, strict=True):
        """As torch's: keys must match exactly and shapes must agree."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise RuntimeError(f"Missing keys {missing}, unexpected keys {unexpected}")
        for key, value in state.items():
            if np.shape(value) != own[key].shape:
                raise RuntimeError(f"size mismatch for {key}: {np.shape(value)} vs "
                                   f"{own[key].shape}")
        for path, module in self.named_modules():
            for attr, old in list(vars(module).items()):
                key = f"{path}.{attr}" if path else attr
                if isinstance(old, Tensor) and key in state:
                    value = state[key].a if isinstance(state[key], Tensor) else state[key]
                    setattr(module, attr, Tensor(np.asarray(value, old.a.dtype),
                                                 old.requires_grad))


class LowerBound(Module):
    def __init__(self, bound):
        self.bound = Tensor(np.array([bound], np.float32))


class NonNegativeParametrizer(Module):
    def __init__(self, minimum=0.0, reparam_offset=OFFSET):
        self.minimum, self.reparam_offset = float(minimum), float(reparam_offset)
        self.pedestal = Tensor(np.array([reparam_offset**2], np.float32))
        self.lower_bound = LowerBound((minimum + reparam_offset**2) ** 0.5)

    def init(self, x):
        return np.sqrt(np.maximum(x + self.pedestal.a, self.pedestal.a))


class GDN(Module):
    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1):
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = Tensor(self.beta_reparam.init(np.ones(in_channels, np.float32)), True)
        self.gamma_reparam = NonNegativeParametrizer()
        gamma = self.gamma_reparam.init(gamma_init * np.eye(in_channels, dtype=np.float32))
        self.gamma = Tensor(gamma, True)

    def effective(self):
        p = self.beta_reparam.pedestal.a
        beta = np.maximum(self.beta.a, self.beta_reparam.lower_bound.bound.a) ** 2 - p
        gamma = np.maximum(self.gamma.a, self.gamma_reparam.lower_bound.bound.a) ** 2 - p
        return beta, gamma

    def forward(self, x):   # NCHW, as CompressAI's: conv2d(x**2, gamma[out, in], beta)
        beta, gamma = self.effective()
        norm = np.einsum("oi,nihw->nohw", gamma.astype(np.float64), x.astype(np.float64) ** 2)
        norm += beta[None, :, None, None]
        return x * (np.sqrt(norm) if self.inverse else 1 / np.sqrt(norm))


class GDN1(GDN):
    def forward(self, x):
        beta, gamma = self.effective()
        norm = np.einsum("oi,nihw->nohw", gamma.astype(np.float64), np.abs(x.astype(np.float64)))
        norm += beta[None, :, None, None]
        return x * (norm if self.inverse else 1 / norm)


class Conv(Module):
    def __init__(self, c_in, c_out):
        self.weight = Tensor(np.zeros((c_out, c_in, 5, 5), np.float32), True)
        self.bias = Tensor(np.zeros(c_out, np.float32), True)


class Sequential(Module):
    def __init__(self, *modules):
        for i, m in enumerate(modules):
            setattr(self, str(i), m)


class ResidualBlockWithStride(Module):     # cheng2020: the GDN sits at .gdn
    def __init__(self, c):
        self.conv1 = Conv(c, c)
        self.gdn = GDN(c)


class ResidualBlockUpsample(Module):       # cheng2020: the IGDN sits at .igdn
    def __init__(self, c):
        self.subpel_conv = Conv(c, c)
        self.igdn = GDN(c, inverse=True)


class FactorizedPrior(Module):             # bmshj2018_factorized / hyperprior / mbt2018
    def __init__(self, n=8, gdn=GDN):
        self.g_a = Sequential(Conv(3, n), gdn(n), Conv(n, n), gdn(n), Conv(n, n), gdn(n),
                              Conv(n, n))
        self.g_s = Sequential(Conv(n, n), gdn(n, inverse=True), Conv(n, n),
                              gdn(n, inverse=True), Conv(n, n), gdn(n, inverse=True),
                              Conv(n, 3))


class Cheng2020(Module):
    def __init__(self, n=6):
        self.g_a = Sequential(ResidualBlockWithStride(n), ResidualBlockWithStride(n))
        self.g_s = Sequential(ResidualBlockUpsample(n), ResidualBlockUpsample(n))


def _randomize(model, rng):
    for _, m in model.named_modules():
        if isinstance(m, GDN):
            c = m.beta.shape[0]
            m.beta = Tensor(rng.uniform(0.5, 1.5, c).astype(np.float32), True)
            g = rng.uniform(0.0, 0.6, (c, c)).astype(np.float32)
            g[0, -1], g[-1, 0] = 0.9, 0.01          # not symmetric: orientation matters
            m.gamma = Tensor(g, True)
    return model


def test_from_compressai_whole_models(rng):
    for model, want in (
            (FactorizedPrior(), ["g_a.1", "g_a.3", "g_a.5", "g_s.1", "g_s.3", "g_s.5"]),
            (Cheng2020(), ["g_a.0.gdn", "g_a.1.gdn", "g_s.0.igdn", "g_s.1.igdn"])):
        _randomize(model, rng)
        layers = cgdn.from_compressai(model)
        assert list(layers) == want
        modules = dict(model.named_modules())
        x = rng.standard_normal((2, layers[want[0]].channels, 5, 5))
        for name, layer in layers.items():
            assert layer.inverse == modules[name].inverse
            assert layer.data_format == "channels_first"
            assert (layer.alpha, layer.epsilon) == (2.0, 0.5)
            assert layer.dtype == np.float32
            np.testing.assert_allclose(layer(x.astype(np.float32)), modules[name].forward(
                x.astype(np.float32)), rtol=1e-5, atol=1e-6)
        assert len({id(layer.store) for layer in layers.values()}) == 1


def test_from_compressai_gdn1_bounds_and_float64(rng):
    model = _randomize(FactorizedPrior(n=4, gdn=GDN1), rng)
    model.g_a.__dict__["3"] = _randomize(GDN1(4, beta_min=1e-2), rng)
    layers = cgdn.from_compressai(model, dtype=np.float64)
    assert (layers["g_a.1"].alpha, layers["g_a.1"].epsilon) == (1.0, 1.0)
    assert layers["g_a.3"].beta_min == pytest.approx(1e-2, rel=1e-6)
    assert layers["g_a.1"].beta_min == 1e-6 and layers["g_a.1"].reparam_offset == OFFSET
    assert layers["g_s.1"].dtype == np.float64
    x = rng.standard_normal((1, 4, 3, 3))
    np.testing.assert_allclose(layers["g_s.3"](x), model.g_s.__dict__["3"].forward(x),
                               rtol=1e-6)


def test_from_compressai_lone_module_prefix_and_store(rng):
    store = cgdn.ParameterStore()
    layers = cgdn.from_compressai(_randomize(GDN(3, inverse=True), rng), store=store,
                                  prefix="enc")
    assert list(layers) == [""] and layers[""].name == "enc/gdn"
    assert sorted(store) == ["enc/gdn/reparam_beta", "enc/gdn/reparam_gamma"]
    with pytest.raises(ValueError, match="already holds"):
        cgdn.from_compressai(GDN(3), store=store, prefix="enc")


def test_from_compressai_refuses_models_without_gdn():
    with pytest.raises(ValueError, match=r"no GDN layers found .*'conv'"):
        model = Module()
        model.conv = Conv(3, 3)
        cgdn.from_compressai(model)
    with pytest.raises(TypeError, match="CompressAI model"):
        cgdn.from_compressai({"g.beta": np.ones(2)})


def test_export_loads_strictly_into_compressai_modules(rng):
    model = _randomize(FactorizedPrior(n=5), rng)
    model.g_s.__dict__["3"] = _randomize(GDN(5, inverse=True, beta_min=1e-2), rng)
    layers = cgdn.from_compressai(model)
    state = cgdn.export_compressai(layers)
    fresh = FactorizedPrior(n=5)
    fresh.g_s.__dict__["3"] = GDN(5, inverse=True, beta_min=1e-2)
    own = {k: v for k, v in fresh.state_dict().items() if "reparam" in k or
           k.endswith((".beta", ".gamma"))}
    assert sorted(state) == sorted(own)            # exactly the GDN keys
    for key, value in state.items():
        assert value.shape == own[key].shape, key   # buffers are (1,), as CompressAI's
    conv_keys = {k: v for k, v in fresh.state_dict().items() if k not in state}
    fresh.load_state_dict({**conv_keys, **state}, strict=True)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key].a, value.a)
    # per-layer bound: the beta_min=1e-2 layer keeps its own
    bound = state["g_s.3.beta_reparam.lower_bound.bound"][0]
    assert bound == np.float32(math.sqrt(1e-2 + PEDESTAL))
    # one layer alone loads into one module
    lone = GDN(5, inverse=True, beta_min=1e-2)
    lone.load_state_dict(layers["g_s.3"].to_compressai(), strict=True)


def test_export_refuses_what_compressai_cannot_hold():
    for layer in (cgdn.GDN(2, rectify=True), cgdn.GDN(2, alpha=1.5)):
        with pytest.raises(ValueError, match="cannot be expressed"):
            layer.to_compressai()


def test_real_torch_module_round_trip(rng):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TLowerBound(nn.Module):
        def __init__(self, bound):
            super().__init__()
            self.register_buffer("bound", torch.Tensor([float(bound)]))

    class TParam(nn.Module):
        def __init__(self, minimum=0.0, reparam_offset=OFFSET):
            super().__init__()
            self.minimum, self.reparam_offset = float(minimum), float(reparam_offset)
            self.register_buffer("pedestal", torch.Tensor([reparam_offset**2]))
            self.lower_bound = TLowerBound((minimum + reparam_offset**2) ** 0.5)

        def forward(self, x):
            return torch.max(x, self.lower_bound.bound) ** 2 - self.pedestal

    class TGDN(nn.Module):
        def __init__(self, c, inverse=False, beta_min=1e-6):
            super().__init__()
            self.inverse = inverse
            self.beta_reparam = TParam(minimum=beta_min)
            self.beta = nn.Parameter(torch.rand(c) + 0.5)
            self.gamma_reparam = TParam()
            self.gamma = nn.Parameter(torch.rand(c, c) * 0.5)

        def forward(self, x):
            c = x.shape[1]
            beta, gamma = self.beta_reparam(self.beta), self.gamma_reparam(self.gamma)
            norm = nn.functional.conv2d(x**2, gamma.reshape(c, c, 1, 1), beta)
            return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))

    model = nn.Sequential(nn.Conv2d(3, 4, 1), TGDN(4), nn.Conv2d(4, 4, 1),
                          TGDN(4, inverse=True, beta_min=1e-2))
    layers = cgdn.from_compressai(model)
    x = torch.randn(2, 4, 6, 6)
    for name in ("1", "3"):
        with torch.no_grad():
            want = model.get_submodule(name)(x).numpy()
        np.testing.assert_allclose(layers[name](x), want, rtol=1e-5, atol=1e-6)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 1), TGDN(4), nn.Conv2d(4, 4, 1),
                          TGDN(4, inverse=True, beta_min=1e-2))
    state = {k: torch.from_numpy(v) for k, v in cgdn.export_compressai(layers).items()}
    conv = {k: v for k, v in model.state_dict().items() if k not in state}
    fresh.load_state_dict({**conv, **state}, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


# --- tensorflow-compression stand-ins (tensorflow_compression/python/layers/gdn.py) --------

class Variable:
    def __init__(self, a):
        self.a = np.asarray(a, np.float32)

    def numpy(self):
        return self.a


class GDNParameter:
    """tfc.GDNParameter: variable = sqrt(max(init + p, p)), value = max(v, bound)^2 - p."""

    def __init__(self, initial_value, minimum=0.0, offset=OFFSET):
        self.minimum, self.offset = float(minimum), float(offset)
        p = np.float32(offset**2)
        self.variable = Variable(np.sqrt(np.maximum(np.float32(initial_value) + p, p)))

    def __call__(self):
        bound = np.float32((self.minimum + self.offset**2) ** 0.5)
        return np.maximum(self.variable.a, bound) ** 2 - np.float32(self.offset**2)


class TfcGDN:
    def __init__(self, name, channels, inverse=False, rectify=False,
                 data_format="channels_last", alpha_parameter=1.0, epsilon_parameter=1.0,
                 rng=None, built=True):
        self.name, self.inverse, self.rectify, self.data_format = (name, inverse, rectify,
                                                                   data_format)
        self.alpha_parameter = (GDNParameter(1.0, minimum=1) if alpha_parameter is None
                                else np.float32(alpha_parameter))
        self.epsilon_parameter = (GDNParameter(1.0, minimum=1e-6) if epsilon_parameter is None
                                  else np.float32(epsilon_parameter))
        self.beta_parameter = self.gamma_parameter = None
        if built:
            g = 0.1 * np.eye(channels) + (rng.uniform(0, 0.3, (channels, channels))
                                          if rng is not None else 0)
            self.beta_parameter = GDNParameter(np.ones(channels), minimum=1e-6)
            self.gamma_parameter = GDNParameter(g, minimum=0)

    def call(self, x):   # tfc's formula, in float64
        x = np.maximum(x, 0) if self.rectify else x
        alpha = _value(self.alpha_parameter)
        eps = _value(self.epsilon_parameter)
        gamma, beta = _value(self.gamma_parameter), _value(self.beta_parameter)
        axis = -1 if self.data_format == "channels_last" else 1
        xm = np.moveaxis(x.astype(np.float64), axis, -1)
        norm = np.abs(xm) ** alpha @ gamma.astype(np.float64) + beta
        y = xm / norm**eps if not self.inverse else xm * norm**eps
        return np.moveaxis(y, -1, axis)


def _value(p):
    return p() if callable(p) else np.asarray(p, np.float64)


class Keras:
    name = "model"

    def __init__(self, *layers):
        self.layers = list(layers)

    @property
    def submodules(self):
        out = []
        for layer in self.layers:
            out.append(layer)
            out.extend(getattr(layer, "submodules", []))
        return out


def test_from_tfc_settings_and_values(rng):
    model = Keras(TfcGDN("gdn", 4, rng=rng),
                  TfcGDN("gdn_1", 4, inverse=True, rectify=True, rng=rng),
                  TfcGDN("gdn_2", 4, data_format="channels_first", alpha_parameter=2.0,
                         epsilon_parameter=0.5, rng=rng),
                  TfcGDN("gdn_3", 4, alpha_parameter=None, epsilon_parameter=None, rng=rng),
                  Keras(TfcGDN("inner_gdn", 4, rng=rng)))
    model.layers[3].alpha_parameter.variable = Variable(np.sqrt(np.float32(1.7) + PEDESTAL))
    model.layers[3].epsilon_parameter.variable = Variable(np.sqrt(np.float32(0.8) + PEDESTAL))
    layers = cgdn.from_tfc(model, prefix="tfc")
    assert list(layers) == ["gdn", "gdn_1", "gdn_2", "gdn_3", "inner_gdn"]
    assert (layers["gdn"].alpha, layers["gdn"].epsilon) == (1.0, 1.0)   # tfc's default
    assert layers["gdn_1"].inverse and layers["gdn_1"].rectify
    assert layers["gdn_2"].data_format == "channels_first"
    assert layers["gdn_3"].alpha == pytest.approx(1.7, rel=1e-6)        # trained, kept
    assert "tfc/gdn_3/reparam_alpha" in layers["gdn_3"].variables
    found = {m.name: m for m in model.submodules}
    for name, layer in layers.items():
        shape = (2, 4, 3, 3) if layer.data_format == "channels_first" else (2, 3, 3, 4)
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(layer(x), found[name].call(x), rtol=2e-5, atol=1e-6)


def test_from_tfc_refusals(rng):
    with pytest.raises(ValueError, match="not built"):
        cgdn.from_tfc(TfcGDN("g", 3, built=False))
    layer = TfcGDN("g", 3, rng=rng)
    layer.gamma_parameter = lambda: np.eye(3)
    with pytest.raises(ValueError, match="callable"):
        cgdn.from_tfc(layer)
    with pytest.raises(ValueError, match="two tfc GDN layers are named 'g'"):
        cgdn.from_tfc(Keras(TfcGDN("g", 3, rng=rng), TfcGDN("g", 3, rng=rng)))

    class Dense:
        name = "dense"
    with pytest.raises(ValueError, match="no GDN layers found.*'dense'"):
        cgdn.from_tfc(Keras(Dense()))


# --- importers: keys of TF1, TF2 object checkpoints and Keras .h5 files ------------------

def test_tf2_checkpoint_keys_and_trained_exponents(rng):
    beta = np.sqrt(np.ones(3, np.float32) + PEDESTAL)
    gamma = np.sqrt(0.1 * np.eye(3, dtype=np.float32) + PEDESTAL)
    p = "model/layer_with_weights-1"
    ckpt = {
        f"{p}/_beta_parameter/variable/.ATTRIBUTES/VARIABLE_VALUE": beta,
        f"{p}/_gamma_parameter/variable/.ATTRIBUTES/VARIABLE_VALUE": gamma,
        f"{p}/_alpha_parameter/variable/.ATTRIBUTES/VARIABLE_VALUE": np.float32(1.2),
        f"{p}/_beta_parameter/variable/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/"
        "VARIABLE_VALUE": np.zeros(3),
        "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE": np.zeros((3, 3)),
        "_CHECKPOINTABLE_OBJECT_GRAPH": np.array(b"graph"),
    }
    store = cgdn.ParameterStore()
    assert cgdn.import_tf_variables(ckpt, store, prefix="enc") == [f"enc/{p}"]
    assert sorted(store) == [f"enc/{p}/reparam_{v}" for v in ("alpha", "beta", "gamma")]
    layer = cgdn.GDN(store=store, name=f"enc/{p}", alpha=1.0, epsilon=1.0)
    assert layer.alpha == pytest.approx(1.2**2 - PEDESTAL)


def test_h5_paths():
    h5 = {"model_weights/gdn_1/gdn_1/reparam_beta:0": np.ones(2),
          "model_weights/gdn_1/gdn_1/reparam_gamma:0": np.eye(2),
          "model_weights/conv/conv/kernel:0": np.zeros((3, 3))}
    assert cgdn.import_tf_variables(h5, cgdn.ParameterStore()) == ["gdn_1"]
    weights_only = {"gdn/gdn/reparam_beta:0": np.ones(2), "gdn/gdn/reparam_gamma:0": np.eye(2)}
    assert cgdn.import_tf_variables(weights_only, cgdn.ParameterStore()) == ["gdn"]


def test_importers_never_succeed_on_nothing():
    keys = {f"layer_with_weights-{i}/kernel/.ATTRIBUTES/VARIABLE_VALUE": np.zeros(1)
            for i in range(7)}
    with pytest.raises(ValueError, match=r"no GDN layers found in variables \(7 entries: "
                                         r"'layer_with_weights-0/kernel.*, \.\.\.\)"):
        cgdn.import_tf_variables(keys, cgdn.ParameterStore())
    with pytest.raises(ValueError, match="no GDN layers found in state_dict"):
        cgdn.import_compressai({"conv.weight": np.zeros((2, 2))}, cgdn.ParameterStore())
    with pytest.raises(ValueError, match="no GDN layers"):
        cgdn.export_compressai(cgdn.ParameterStore())


def test_prefix_is_a_scope(rng):
    for prefix in ("enc", "enc/"):
        store = cgdn.ParameterStore()
        cgdn.import_compressai({"g_a.1.beta": np.ones(2), "g_a.1.gamma": np.eye(2)}, store,
                               prefix=prefix)
        assert list(store) == ["enc/g_a/1/reparam_beta", "enc/g_a/1/reparam_gamma"]
    with pytest.raises(ValueError, match="prefix"):
        cgdn.import_compressai({"g.beta": np.ones(2), "g.gamma": np.eye(2)},
                               cgdn.ParameterStore(), prefix="a//b")


def test_export_of_a_store_takes_bounds_per_layer():
    store = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3)), name="a", store=store)
    cgdn.gdn(np.ones((1, 2, 2, 3)), name="b", store=store)
    state = cgdn.export_compressai(store, beta_min={"a": 0.1, "b": 1e-6})
    assert state["a.beta_reparam.lower_bound.bound"][0] == math.sqrt(0.1 + PEDESTAL)
    assert state["b.beta_reparam.lower_bound.bound"][0] == math.sqrt(1e-6 + PEDESTAL)
