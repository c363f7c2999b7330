"""The parameter store: the in-memory store, custom stores through the protocol, thread safety."""
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cgdn


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
