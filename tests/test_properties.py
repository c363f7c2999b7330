"""Property tests (hypothesis): random shapes, layouts, views, dtypes, out= and parameters.

The CI profile runs a few hundred examples per test; for a thorough run:

    python -m pytest tests/test_properties.py --hypothesis-profile=thorough

(10,000 examples per test; see conftest.py for the profiles).
"""
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import cgdn
from cgdn import _isa
from conftest import VARIANTS, reference_gdn

# float32 sums up to 64 products and raises them to epsilon <= 2: allow a few ulps more
# than the golden-file tolerance of 1e-5 (which is for TF's classic exponents).
RTOL = {np.float16: 4e-3, np.float32: 3e-5, np.float64: 1e-10}
ATOL = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}
COMPUTE = {np.float16: np.float32, np.float32: np.float32, np.float64: np.float64}


@st.composite
def layouts(draw, min_rank=2):
    """(logical shape, data_format, channel count)."""
    rank = draw(st.integers(min_rank, 6))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    n_channels = draw(st.one_of(st.integers(1, 9), st.integers(10, 64)))
    max_side = {2: 60, 3: 20, 4: 9, 5: 5, 6: 4}[rank]
    others = draw(st.lists(st.integers(0, max_side), min_size=rank - 1, max_size=rank - 1))
    if draw(st.booleans()):   # usually non-empty; sometimes a zero-length axis
        others = [max(o, 1) for o in others]
    axis = rank - 1 if data_format == "channels_last" or rank == 2 else 1
    shape = list(others)
    shape.insert(axis, n_channels)
    return tuple(shape), data_format, n_channels


@st.composite
def arrays_with_views(draw, shape, dtype):
    """An array of ``shape`` as a contiguous array, a stepped/flipped view or a transpose."""
    kind = draw(st.sampled_from(["contiguous", "steps", "transpose", "fortran"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))

    def values(s):
        v = rng.standard_normal(s) * scale
        v[rng.random(s) < 0.05] = 0.0
        return v.astype(dtype)

    if kind == "contiguous":
        return values(shape), kind
    if kind == "fortran":
        return np.asfortranarray(values(shape)), kind
    if kind == "steps":
        steps = [draw(st.integers(1, 3)) for _ in shape]
        flips = [draw(st.booleans()) for _ in shape]
        base = values(tuple(max(n * k, 1) for n, k in zip(shape, steps)))
        index = tuple(slice(None, n * k, k) if not f else slice(n * k - 1 if n else 0, None,
                                                                    -k) if n else slice(0, 0)
                      for n, k, f in zip(shape, steps, flips))
        view = base[index]
        return view[tuple(slice(0, n) for n in shape)], kind
    perm = draw(st.permutations(range(len(shape))))
    base = values(tuple(shape[p] for p in perm))
    return np.transpose(base, np.argsort(perm)), kind


@st.composite
def parameters(draw, n_channels):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    beta = rng.uniform(0.05, 2.0, n_channels)
    gamma = rng.uniform(0.0, 1.0, (n_channels, n_channels))
    gamma[rng.random((n_channels, n_channels)) < draw(st.sampled_from([0.0, 0.5, 0.9]))] = 0
    alpha, epsilon = draw(st.one_of(
        st.just((2.0, 0.5)), st.just((1.0, 1.0)),
        st.tuples(st.floats(0.5, 3.0), st.floats(0.25, 2.0))))
    return beta, gamma, alpha, epsilon


def _check(y, x, beta, gamma, dtype, **kw):
    ref = reference_gdn(x.astype(COMPUTE[dtype]), beta.astype(COMPUTE[dtype]),
                        gamma.astype(COMPUTE[dtype]), **kw)
    if dtype == np.float16:
        with np.errstate(over="ignore"):
            ref = ref.astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=RTOL[dtype], atol=ATOL[dtype])


@given(data=st.data())
def test_apply_gdn_matches_reference(data):
    shape, data_format, n_channels = data.draw(layouts())
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    x, kind = data.draw(arrays_with_views(shape, dtype))
    beta, gamma, alpha, epsilon = data.draw(parameters(n_channels))
    inverse, rectify = data.draw(st.booleans()), data.draw(st.booleans())
    read_only = data.draw(st.booleans())
    out_mode = data.draw(st.sampled_from(["none", "separate", "strided", "inplace",
                                          "overlap"]))
    num_threads = data.draw(st.sampled_from([None, 1, 2, -1]))
    isa = data.draw(st.sampled_from(VARIANTS))
    note(f"isa={isa} shape={shape} {data_format} {np.dtype(dtype)} view={kind} out={out_mode} "
         f"alpha={alpha} epsilon={epsilon} inverse={inverse} rectify={rectify}")
    kw = dict(inverse=inverse, rectify=rectify, alpha=alpha, epsilon=epsilon,
              data_format=data_format)
    original = x.copy()
    if read_only and out_mode != "inplace":
        x.flags.writeable = False
    out = None
    if out_mode == "separate":
        out = np.full(shape, np.nan, dtype)
    elif out_mode == "strided":
        out = np.full(tuple(2 * n for n in shape), np.nan, dtype)[(slice(None, None, 2),) *
                                                                  len(shape)]
    elif out_mode == "inplace":
        out = x
    elif out_mode == "overlap":
        # out is the input buffer shifted by one element
        flat = np.concatenate([original.ravel(), np.zeros(1, dtype)])
        x = flat[:-1].reshape(shape)
        out = flat[1:].reshape(shape)
    with _isa.use(isa):
        y = cgdn.apply_gdn(x, beta, gamma, out=out, num_threads=num_threads, **kw)
    assert y.shape == shape and y.dtype == dtype
    if out is not None:
        assert y is out
    _check(y, original, beta, gamma, dtype, **kw)
    if out_mode not in ("inplace", "overlap"):
        np.testing.assert_array_equal(x, original)   # the input is untouched


@given(data=st.data())
def test_gdn_matches_reference(data):
    shape, data_format, n_channels = data.draw(layouts(min_rank=3))
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    x, _ = data.draw(arrays_with_views(shape, dtype))
    original = x.copy()
    store = cgdn.ParameterStore()
    inverse = data.draw(st.booleans())
    gamma_init = data.draw(st.sampled_from([0.1, 0.0, 0.5]))
    beta_min = data.draw(st.sampled_from([1e-6, 1e-3, 0.1]))
    y = cgdn.gdn(x, inverse=inverse, gamma_init=gamma_init, beta_min=beta_min,
                 data_format=data_format, name="g", store=store)
    _check(y, original, np.ones(n_channels), gamma_init * np.eye(n_channels), dtype,
           inverse=inverse, data_format=data_format)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    raw_beta = rng.uniform(-0.5, 1.5, n_channels)
    raw_gamma = rng.uniform(-0.2, 0.8, (n_channels, n_channels))
    store["g/reparam_beta"], store["g/reparam_gamma"] = raw_beta, raw_gamma
    y = cgdn.gdn(x, inverse=inverse, beta_min=beta_min, data_format=data_format, name="g",
                 reuse=True, store=store)
    compute = COMPUTE[dtype]
    beta = cgdn.params.reparam_value(raw_beta.astype(compute), beta_min, 2**-18, compute)
    gamma = cgdn.params.reparam_value(raw_gamma.astype(compute), 0.0, 2**-18, compute)
    _check(y, original, beta, gamma, dtype, inverse=inverse, data_format=data_format)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_thread_count_never_changes_results(dtype, data):
    shape, data_format, n_channels = data.draw(layouts())
    x, _ = data.draw(arrays_with_views(shape, dtype))
    beta, gamma, alpha, epsilon = data.draw(parameters(n_channels))
    kw = dict(alpha=alpha, epsilon=epsilon, data_format=data_format)
    with _isa.use(data.draw(st.sampled_from(VARIANTS))):
        one = cgdn.apply_gdn(x, beta, gamma, num_threads=1, **kw)
        two = cgdn.apply_gdn(x, beta, gamma, num_threads=2, **kw)
    np.testing.assert_array_equal(one, two)
