"""The parameter store, scopes, files and importers."""
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cgdn
from cgdn import params
from conftest import GOLDEN_FILES


@pytest.fixture
def store():
    s = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=s)
    cgdn.gdn(np.ones((1, 2, 2, 5)), name="b", trainable=False, store=s)
    return s


def _non_symmetric(c, rng):
    g = rng.uniform(0.0, 1.0, (c, c))
    g[0, -1], g[-1, 0] = 0.9, 0.01
    return g


# --- store basics ---------------------------------------------------------------------

def test_arrays_are_handed_out_read_only(store):
    beta = store["a/reparam_beta"]
    with pytest.raises(ValueError):
        beta[0] = 5.0
    name, arr = store.items()[0]
    with pytest.raises(ValueError):
        arr[...] = 0
    # even a caller who forces the flag only changes a private copy
    beta.flags.writeable = True
    beta[:] = 42.0
    arr.flags.writeable = True
    arr[:] = 42.0
    assert not np.any(store["a/reparam_beta"] == 42.0)


def test_values_given_to_the_store_are_copied(store):
    value = np.array([1.0, 2.0, 3.0], np.float32)
    store["a/reparam_beta"] = value
    value[0] = 100.0
    assert store["a/reparam_beta"][0] == 1.0
    new = np.ones(4)
    store.create("c/extra", new)
    new[:] = 7
    assert np.all(store["c/extra"] == 1)


def test_setitem_validates(store):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        store["a/reparam_beta"] = np.ones(4)
    with pytest.raises(TypeError, match="real numbers"):
        store["a/reparam_beta"] = np.ones(3, complex)
    with pytest.raises(ValueError, match="finite"):
        store["a/reparam_beta"] = [1.0, np.nan, 1.0]
    with pytest.raises(KeyError, match="create"):
        store["missing/reparam_beta"] = np.ones(3)
    store["a/reparam_beta"] = np.array([1, 2, 3])  # ints are cast to the variable's dtype
    assert store["a/reparam_beta"].dtype == np.float32


def test_create_refuses_existing_and_bad_names(store):
    with pytest.raises(ValueError, match="already exists"):
        store.create("a/reparam_beta", np.ones(3))
    for bad in ("", "/x", "x/", "a//b"):
        with pytest.raises(ValueError, match="invalid variable name"):
            store.create(bad, np.ones(1))
    with pytest.raises(TypeError):
        store.create(3, np.ones(1))


def test_mapping_protocol(store):
    assert "a/reparam_beta" in store and "zzz" not in store
    assert len(store) == 4 and list(store) == store.keys()
    assert store.trainable_variables == ["a/reparam_beta", "a/reparam_gamma"]
    del store["a/reparam_beta"]
    assert "a/reparam_beta" not in store
    assert store.trainable_variables == ["a/reparam_gamma"]
    with pytest.raises(KeyError):
        store["a/reparam_beta"]
    assert "ParameterStore" in repr(store)


def test_pickle_round_trip(store):
    store.add_loss(1.5, scope="a")
    copy = pickle.loads(pickle.dumps(store))
    assert list(copy) == list(store)
    for name in store:
        np.testing.assert_array_equal(copy[name], store[name])
        assert copy[name].dtype == store[name].dtype
        assert not copy[name].flags.writeable
    assert copy.trainable_variables == store.trainable_variables
    assert copy.losses == [1.5] and copy.losses[0].scope == "a"
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", reuse=True, store=copy)
    assert pickle.loads(pickle.dumps(cgdn.AUTO_REUSE)) is cgdn.AUTO_REUSE


def test_custom_store_protocol(rng):
    class DictStore:
        """A minimal third-party backend."""

        def __init__(self):
            self.data, self.trainable_variables, self.losses = {}, [], []
            self._lock = threading.RLock()

        def __getitem__(self, k):
            return self.data[k]

        def __setitem__(self, k, v):
            self.data[k] = np.asarray(v)

        def __delitem__(self, k):
            del self.data[k]

        def __contains__(self, k):
            return k in self.data

        def __iter__(self):
            return iter(list(self.data))

        def create(self, k, v, *, trainable=True):
            self.data[k] = np.asarray(v)
            if trainable:
                self.trainable_variables.append(k)

        def add_loss(self, value, *, scope):
            self.losses.append((scope, value))

        def lock(self):
            return self._lock

    s = DictStore()
    x = rng.standard_normal((1, 3, 3, 4))
    y = cgdn.gdn(x, store=s, activity_regularizer=np.sum)
    assert set(s.data) == {"gdn/reparam_beta", "gdn/reparam_gamma"}
    np.testing.assert_allclose(y, x / np.sqrt(1 + 0.1 * x**2))
    assert s.losses[0][0] == "gdn"


def test_minimal_stores_work(rng):
    # A plain dict is a store: names in, arrays out.
    d = {}
    x = rng.standard_normal((1, 3, 3, 4))
    y = cgdn.gdn(x, store=d)
    assert sorted(d) == ["gdn/reparam_beta", "gdn/reparam_gamma"]
    np.testing.assert_allclose(y, x / np.sqrt(1 + 0.1 * x**2))
    cgdn.gdn(x, store=d)
    assert "gdn_1/reparam_gamma" in d
    with pytest.raises(ValueError, match="already exists"):
        cgdn.gdn(x, name="gdn", store=d)
    assert len(d) == 4

    class GetSetStore:
        """Only get / set / keys / in, as in the style guide's sketch."""

        def __init__(self):
            self.data, self.trainable, self.losses = {}, [], []

        def __contains__(self, k):
            return k in self.data

        def get(self, k):
            return self.data[k]

        def set(self, k, v, trainable=True):
            self.data[k] = np.asarray(v)
            if trainable:
                self.trainable.append(k)

        def keys(self):
            return self.data.keys()

    s = GetSetStore()
    cgdn.gdn(x, store=s, trainable=False, activity_regularizer=np.sum)
    cgdn.gdn(x, name="gdn", reuse=True, store=s)
    assert list(s.data) == ["gdn/reparam_beta", "gdn/reparam_gamma"] and s.trainable == []
    assert s.losses[0].scope == "gdn"


def test_parameter_store_get_and_set():
    s = cgdn.ParameterStore()
    assert s.get("a/x") is None and s.get("a/x", 5) == 5
    s.set("a/x", [1.0, 2.0], trainable=False)
    assert s.trainable_variables == []
    s.set("a/x", [3.0, 4.0])
    np.testing.assert_array_equal(s.get("a/x"), [3.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        s.set("a/x", [1.0])


def test_store_is_safe_from_many_threads(rng):
    s = cgdn.ParameterStore()
    x = rng.standard_normal((2, 8, 8, 6)).astype(np.float32)
    serial = cgdn.gdn(x, store=cgdn.ParameterStore())

    def work(i):
        shared = cgdn.gdn(x, name="shared", reuse=cgdn.AUTO_REUSE, store=s, num_threads=2)
        with cgdn.variable_scope(f"t{i % 4}", reuse=cgdn.AUTO_REUSE):
            cgdn.gdn(x, name="own", store=s)
        fresh = cgdn.gdn(x, store=s)
        return shared, fresh

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(40)))
    for shared, fresh in results:
        np.testing.assert_array_equal(shared, serial)
        np.testing.assert_array_equal(fresh, serial)
    names = list(s)
    assert len(names) == len(set(names))
    fresh_layers = [n for n in names if n.startswith("gdn") and n.endswith("reparam_beta")]
    assert len(fresh_layers) == 40                         # none lost, none duplicated
    assert sum(n.startswith("t") for n in names) == 8      # 4 scopes x 2 variables
    assert "shared/reparam_gamma" in s


def test_scopes_are_per_thread():
    seen = {}
    barrier = threading.Barrier(2)

    def work(label):
        with cgdn.variable_scope(label):
            barrier.wait()
            seen[label] = params.current_scope().name

    threads = [threading.Thread(target=work, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"x": "x", "y": "y"}
    assert params.current_scope().name == ""


def test_variable_scope_validation():
    with pytest.raises(ValueError, match="name"):
        with cgdn.variable_scope(""):
            pass
    with pytest.raises(TypeError, match="reuse"):
        with cgdn.variable_scope("a", reuse="x"):
            pass


# --- files ------------------------------------------------------------------------------

def test_save_load_round_trip(store, tmp_path):
    path = tmp_path / "params.npz"
    store.save(path)
    loaded = cgdn.ParameterStore.load(path)
    assert list(loaded) == list(store)
    for name in store:
        np.testing.assert_array_equal(loaded[name], store[name])
        assert loaded[name].dtype == store[name].dtype
    assert loaded.trainable_variables == store.trainable_variables
    assert sorted(os.listdir(tmp_path)) == ["params.npz"]  # no temporary left behind


def test_restore_is_strict_and_all_or_nothing(store, tmp_path):
    path = tmp_path / "p.npz"
    store.save(path)
    target = pickle.loads(pickle.dumps(store))
    target["a/reparam_beta"] = [9.0, 9.0, 9.0]
    target.restore(path)
    np.testing.assert_array_equal(target["a/reparam_beta"], store["a/reparam_beta"])

    other = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=other)
    before = {n: other[n].copy() for n in other}
    with pytest.raises(ValueError, match=r"missing \[\].*extra \['b/reparam_beta'"):
        other.restore(path)
    assert {n: other[n].tolist() for n in other} == {n: v.tolist() for n, v in before.items()}


def test_load_refuses_bad_files(tmp_path):
    def write(name, **arrays):
        path = tmp_path / name
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    fmt = {"__cgdn_format__": np.array("cgdn-parameters-1")}
    cases = {
        "not a cgdn parameter file": write("a.npz", **{"g/reparam_beta": np.ones(2)}),
        "must be float32 or float64": write("b.npz", **fmt, **{"g/x": np.ones(2, int)}),
        "non-finite": write("c.npz", **fmt, **{"g/reparam_beta": np.array([1, np.nan]),
                                                 "g/reparam_gamma": np.eye(2)}),
        "reparam_gamma is missing": write("d.npz", **fmt, **{"g/reparam_beta": np.ones(2)}),
        r"\(C, C\)": write("e.npz", **fmt, **{"g/reparam_beta": np.ones(2),
                                              "g/reparam_gamma": np.eye(3)}),
        "not a readable": write("f.npz", **fmt, **{"g/x": np.array([object()])}),
    }
    for match, path in cases.items():
        with pytest.raises(ValueError, match=match):
            cgdn.ParameterStore.load(path)
    good = tmp_path / "good.npz"
    s = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3)), store=s)
    s.save(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        cgdn.ParameterStore.load(truncated)
    with pytest.raises(ValueError, match="not a readable"):
        cgdn.ParameterStore.load(tmp_path / "does-not-exist.npz")


def test_interrupted_save_keeps_previous_file(store, tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    store.save(path)
    original = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(params.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        store.save(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


# --- importers --------------------------------------------------------------------------

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
    cgdn.import_compressai(sd, store)
    exported = cgdn.export_compressai(store)
    for key, value in sd.items():
        np.testing.assert_array_equal(exported[key], value)
        assert exported[key].dtype == value.dtype
    again = cgdn.ParameterStore()
    cgdn.import_compressai(exported, again)
    for name in store:
        np.testing.assert_array_equal(again[name], store[name])
    with pytest.raises(ValueError, match="no GDN layer"):
        cgdn.export_compressai(store, scopes=["nope"])


def test_reparam_helpers_match_tf_definitions():
    offset = 2.0**-10
    raw = np.array([-1.0, 0.0, offset / 2, offset, 0.5], np.float32)
    got = params.reparam_value(raw, 0.0, offset, np.float32)
    np.testing.assert_array_equal(got[:4], 0)
    assert got[4] == np.float32(0.25) - np.float32(offset**2)
    init = params.reparam_init(np.array([0.0, 1.0]), offset, np.float64)
    np.testing.assert_allclose(params.reparam_value(init, 0.0, offset), [0.0, 1.0])


@pytest.mark.parametrize("failing", ["fsync", "replace", "savez_midway"])
def test_save_interrupted_at_any_point_keeps_previous_file(store, tmp_path, monkeypatch,
                                                           failing):
    path = tmp_path / "p.npz"
    store.save(path)
    original = path.read_bytes()
    changed = pickle.loads(pickle.dumps(store))
    changed["a/reparam_beta"] = [5.0, 5.0, 5.0]
    if failing == "fsync":
        monkeypatch.setattr(params.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("io")))
    elif failing == "replace":
        monkeypatch.setattr(params.os, "replace",
                            lambda a, b: (_ for _ in ()).throw(OSError("io")))
    else:
        real_savez = np.savez

        def savez_then_fail(f, **arrays):
            real_savez(f, **arrays)
            f.truncate(f.tell() // 2)
            raise KeyboardInterrupt  # interrupted, not just failed

        monkeypatch.setattr(params.np, "savez", savez_then_fail)
    with pytest.raises((OSError, KeyboardInterrupt)):
        changed.save(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_restore_refuses_bad_files_and_keeps_store(store, tmp_path):
    snapshot = {n: store[n].copy() for n in store}
    bad_nan = tmp_path / "nan.npz"
    other = pickle.loads(pickle.dumps(store))
    other._variables["a/reparam_beta"] = np.array([1.0, np.nan, 1.0], np.float32)  # bypass
    other.save(bad_nan)
    shape = tmp_path / "shape.npz"
    s2 = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 4), np.float32), name="a", store=s2)
    cgdn.gdn(np.ones((1, 2, 2, 5)), name="b", store=s2)
    s2.save(shape)
    missing = tmp_path / "missing.npz"
    s3 = cgdn.ParameterStore()
    cgdn.gdn(np.ones((1, 2, 2, 3), np.float32), name="a", store=s3)
    s3.save(missing)
    for path, match in ((bad_nan, "non-finite"), (shape, "shape"),
                        (missing, r"missing \['b/reparam_beta'")):
        with pytest.raises(ValueError, match=match):
            store.restore(path)
        for name, value in snapshot.items():
            np.testing.assert_array_equal(store[name], value)
