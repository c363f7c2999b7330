"""Everything hostile at once (hypothesis): memory layouts and values users' arrays arrive in.

One strategy draws the array's memory (a byte offset, steps of either sign, a zero stride,
a stride beyond 4 GB), its values (zeros of both signs, subnormals, tiny and huge
magnitudes, NaN and infinities, in patches or alone) and the parameters' edge values
(beta at the smallest normal or zero, gamma with zero rows, columns and tiny or huge
entries), and ``out`` (separate and hostile itself, in place, partly overlapping the input,
or overlapping itself, which is refused). The properties:

- nothing but a named ``ValueError``/``TypeError`` escapes, and nothing crashes;
- ``apply_gdn``: at every position whose inputs are finite the result is the float64
  answer (summed in the log domain, so it has no overflow of its own), at every position
  a NaN input gives NaN, and the input is unchanged unless it is ``out``;
- the density functions (``gdn_logdet``, ``gdn_vjp``, ``gdn_inverse``): the same bits as
  on a contiguous copy of the same values, and the input unchanged.

``tools/check_sanitizers.sh`` runs this file under AddressSanitizer and
UndefinedBehaviorSanitizer, once per kernel variant.
"""
import mmap
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import cgdn
from cgdn import _isa
from conftest import VARIANTS

DTYPES = [np.float16, np.float32, np.float64]
COMPUTE = {np.float16: np.float32, np.float32: np.float32, np.float64: np.float64}
# float32 pools sum up to 40 rounded products raised to epsilon <= 2; float64 results are
# compared with a log-domain reference whose exp() carries |log y| * 2**-53.
RTOL = {np.float16: 2e-3, np.float32: 4e-5, np.float64: 1e-11}
HUGE_STRIDE = 2**32 + 2**12      # bytes: beyond any 32-bit offset
# Strides beyond 4 GB need a mapping of that size whose untouched pages cost nothing: a
# private, unreserved anonymous mapping, drawn on Linux only (Python < 3.13 lacks the
# constant; Linux's value on x86-64 and arm64 then)
HUGE_STRIDES = sys.platform == "linux"
NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


@st.composite
def shapes(draw):
    """(shape, data_format, channel count): rank 2 to 5, a few or many channels."""
    rank = draw(st.integers(2, 5))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    n_channels = draw(st.one_of(st.integers(1, 9), st.integers(10, 40)))
    max_side = {2: 70, 3: 12, 4: 6, 5: 4}[rank]
    shape = draw(st.lists(st.integers(1, max_side), min_size=rank - 1, max_size=rank - 1))
    shape.insert(rank - 1 if data_format == "channels_last" or rank == 2 else 1, n_channels)
    return tuple(shape), data_format, n_channels


@st.composite
def memory(draw, rank, dtype, zero_strides=True):
    """How an array of that rank lies in memory: C or F block order, per-axis steps of
    either sign, at times a zero stride (a broadcast axis), at times one stride beyond
    4 GB, and a byte offset (any alignment)."""
    order = draw(st.sampled_from(["C", "F"]))
    steps = [draw(st.sampled_from([1, 1, 1, 2, 3])) * draw(st.sampled_from([1, -1]))
             for _ in range(rank)]
    zero_axis = draw(st.one_of(st.none(), st.integers(0, rank - 1))) if zero_strides else None
    huge_axis = draw(st.one_of(st.none(), st.none(), st.integers(0, rank - 1))) \
        if HUGE_STRIDES else None
    offset = draw(st.integers(0, 2 * np.dtype(dtype).itemsize - 1))
    return order, steps, zero_axis, huge_axis, offset


def _place(shape, dtype, order, steps, zero_axis, huge_axis, offset, keep, slack=0):
    """A view of ``shape`` into a fresh buffer with the layout drawn (its elements not yet
    written), with ``slack`` spare bytes after it. Returns (view, buffer, byte offset of
    element [0, ..., 0]); the buffer is kept alive in ``keep``."""
    itemsize = np.dtype(dtype).itemsize
    axes = range(len(shape))[::-1] if order == "C" else range(len(shape))
    strides = [0] * len(shape)
    span = itemsize                                   # bytes the smaller axes cover
    for a in axes:
        if a == zero_axis and shape[a] > 1:
            continue
        strides[a] = span * abs(steps[a])
        span += strides[a] * (shape[a] - 1)
    if huge_axis is not None and strides[huge_axis] and 1 < shape[huge_axis] <= 4:
        # the huge axis steps beyond 4 GB: an anonymous mapping, untouched pages cost nothing
        span += (HUGE_STRIDE - strides[huge_axis]) * (shape[huge_axis] - 1)
        strides[huge_axis] = HUGE_STRIDE
    size = offset + span + slack
    if size > 2**30:    # private and unreserved: only the pages written take memory
        buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
    else:
        buffer = bytearray(size)
    keep.append(buffer)
    # element [0, ..., 0] sits where the negative steps leave room below it
    start = offset + sum(strides[a] * (shape[a] - 1) for a in range(len(shape)) if steps[a] < 0)
    signed = [-s if steps[a] < 0 else s for a, s in enumerate(strides)]
    return np.ndarray(shape, dtype, buffer=buffer, offset=start, strides=signed), buffer, start


SPECIALS = ["zero", "negzero", "subnormal", "tiny", "huge", "nan", "inf", "neginf"]


@st.composite
def hostile_values(draw, shape, dtype):
    """Values: normal numbers of one scale with patches or single positions of specials."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    info = np.finfo(dtype)
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    values = rng.standard_normal(shape) * scale
    kinds = draw(st.lists(st.sampled_from(SPECIALS), max_size=4, unique=True))
    fraction = draw(st.sampled_from([0.002, 0.05, 0.5, 1.0]))
    for kind in kinds:
        where = rng.random(shape) < fraction / len(kinds)
        if not where.any():
            where.flat[rng.integers(values.size)] = True
        sign = rng.choice([-1.0, 1.0], where.sum())
        log_max = np.log10(float(info.max))
        special = {
            "zero": np.zeros(where.sum()),
            "negzero": -np.zeros(where.sum()),
            "subnormal": sign * float(info.smallest_subnormal) * rng.integers(1, 1000,
                                                                              where.sum()),
            "tiny": sign * 10.0 ** rng.uniform(np.log10(float(info.tiny)), log_max / -3,
                                               where.sum()),
            "huge": sign * 10.0 ** rng.uniform(log_max / 3, log_max - 0.01, where.sum()),
            "nan": np.full(where.sum(), np.nan),
            "inf": np.full(where.sum(), np.inf),
            "neginf": np.full(where.sum(), -np.inf),
        }[kind]
        values[where] = special
    with np.errstate(over="ignore", under="ignore"):
        return values.astype(dtype), kinds


@st.composite
def hostile_parameters(draw, n_channels, dtype):
    """beta and gamma at their edges; alpha and epsilon, classic or general."""
    compute = COMPUTE[dtype]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tiny = float(np.finfo(compute).tiny)
    beta = {
        "ordinary": lambda: rng.uniform(0.05, 2.0, n_channels),
        "smallest_normal": lambda: np.full(n_channels, tiny),
        "zero": lambda: np.zeros(n_channels),
        "mixed": lambda: rng.choice([0.0, tiny, 1e-3, 1.0, 1e3], n_channels),
    }[draw(st.sampled_from(["ordinary", "smallest_normal", "zero", "mixed"]))]()
    gamma = rng.uniform(0.0, 1.0, (n_channels, n_channels))
    gamma[rng.random(gamma.shape) < draw(st.sampled_from([0.0, 0.5, 0.9]))] = 0
    if draw(st.booleans()):
        gamma[rng.integers(n_channels)] = 0          # an input that pools nowhere
    if draw(st.booleans()):
        gamma[:, rng.integers(n_channels)] = 0       # an output pooling only beta
    if draw(st.booleans()):                          # entries at the ends of the range
        edges = rng.random(gamma.shape) < 0.2
        gamma[edges] = rng.choice([tiny, 1e-20, 1e10], edges.sum())
    alpha, epsilon = draw(st.one_of(
        st.just((2.0, 0.5)), st.just((1.0, 1.0)), st.just((2.0, 1.0)),
        st.tuples(st.floats(0.5, 3.0), st.floats(0.25, 2.0))))
    return beta, gamma, alpha, epsilon


def log_domain_reference(x, beta, gamma, alpha, epsilon, inverse, rectify):
    """float64 GDN of the rows ``x`` (P, C) with the pool summed as log-sum-exp: its own
    arithmetic neither overflows nor underflows, whatever the magnitudes."""
    x = np.asarray(x, np.float64)
    if rectify:
        x = np.where(x < 0, 0.0, x)                 # -0.0 and NaN stay (as TF's relu)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_abs = np.log(np.abs(x))                                    # -inf at zeros
        terms = np.log(gamma)[None] + alpha * log_abs[:, :, None]      # (P, j, i)
        terms = np.concatenate([terms, np.broadcast_to(np.log(beta), (len(x), 1,
                                                                      len(beta)))], axis=1)
        top = terms.max(axis=1)
        shifted = np.where(np.isfinite(top)[:, None], terms - top[:, None], -np.inf)
        log_pool = np.where(np.isfinite(top), top + np.log(np.exp(shifted).sum(axis=1)), top)
        log_y = log_abs + (1 if inverse else -1) * epsilon * log_pool   # NaN for 0 / 0
        return np.copysign(np.exp(log_y), x)


def _rows(a, data_format):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return a.reshape(-1, a.shape[-1])


def _compare(y, x, beta, gamma, dtype, data_format, **kw):
    """y against the reference at positions whose inputs are all finite; NaN inputs give
    NaN outputs; nothing else is said of positions holding a NaN or an infinity."""
    xr, yr = _rows(x, data_format), _rows(y, data_format).astype(np.float64)
    compute = COMPUTE[dtype]
    finite = np.all(np.isfinite(xr), axis=1)
    want = log_domain_reference(xr[finite], beta.astype(compute), gamma.astype(compute), **kw)
    with np.errstate(over="ignore"):
        want = want.astype(dtype).astype(np.float64)                   # as the dtype holds it
    got = yr[finite]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    both = np.isfinite(want)
    np.testing.assert_array_equal(np.signbit(got[both]), np.signbit(want[both]))
    # results in the subnormal range carry an absolute error of a few subnormal steps
    atol = 4 * float(np.finfo(dtype).smallest_subnormal)
    np.testing.assert_allclose(got[both], want[both], rtol=RTOL[dtype], atol=atol)
    assert np.all(np.isnan(yr[np.isnan(xr)]))


@given(data=st.data())
def test_apply_gdn_hostile(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape, data_format, n_channels = data.draw(shapes())
    order, steps, zero_axis, huge_axis, offset = data.draw(memory(len(shape), dtype))
    values, kinds = data.draw(hostile_values(shape, dtype))
    beta, gamma, alpha, epsilon = data.draw(hostile_parameters(n_channels, dtype))
    inverse, rectify = data.draw(st.booleans()), data.draw(st.booleans())
    out_mode = data.draw(st.sampled_from(["none", "separate", "inplace", "overlap",
                                          "overlaps_itself"]))
    num_threads = data.draw(st.sampled_from([None, 1, 2]))
    isa = data.draw(st.sampled_from(VARIANTS))
    keep = []
    itemsize = np.dtype(dtype).itemsize
    shift = data.draw(st.integers(1, 3)) * itemsize * data.draw(st.sampled_from([1, -1]))
    x, buffer, start = _place(shape, dtype, order, steps, zero_axis, huge_axis,
                              offset + 3 * itemsize, keep, slack=3 * itemsize)
    x[...] = values          # along a zero-stride axis the last value written is the value
    original = x.copy()
    note(f"isa={isa} shape={shape} {data_format} {np.dtype(dtype)} strides={x.strides} "
         f"offset={offset} specials={kinds} out={out_mode} alpha={alpha} "
         f"epsilon={epsilon} inverse={inverse} rectify={rectify} threads={num_threads}")
    kw = dict(inverse=inverse, rectify=rectify, alpha=alpha, epsilon=epsilon)
    out = None
    if out_mode == "separate":
        out = _place(shape, dtype, *data.draw(memory(len(shape), dtype, False)), keep)[0]
        out[...] = np.nan
    elif out_mode == "inplace":
        out = x
    elif out_mode == "overlap":
        # the same layout one to three elements away in the same memory
        out = np.ndarray(shape, dtype, buffer=buffer, offset=start + shift, strides=x.strides)
    elif out_mode == "overlaps_itself":
        out = np.zeros(shape, dtype)
        axis = int(np.argmax(shape))                  # a zero stride along the longest axis
        out = np.lib.stride_tricks.as_strided(out, shape, [
            0 if a == axis else s for a, s in enumerate(out.strides)])
    # an out with a zero stride along an axis longer than 1: several results on one address
    x_repeats = zero_axis is not None and shape[zero_axis] > 1
    if (out_mode == "overlaps_itself" and np.prod(shape) > 1) or (
            out_mode in ("inplace", "overlap") and x_repeats):
        # refused, nothing written
        before = np.array(np.lib.stride_tricks.as_strided(out, shape, out.strides))
        with pytest.raises(ValueError, match="out must not overlap itself"), _isa.use(isa):
            cgdn.apply_gdn(x, beta, gamma, out=out, num_threads=num_threads,
                           data_format=data_format, **kw)
        np.testing.assert_array_equal(x, original)
        np.testing.assert_array_equal(out, before)
        return
    with _isa.use(isa), np.errstate(all="ignore"):
        y = cgdn.apply_gdn(x, beta, gamma, out=out, num_threads=num_threads,
                           data_format=data_format, **kw)
    assert y.shape == shape and y.dtype == dtype
    if out is not None:
        assert y is out
    _compare(y, original, beta, gamma, dtype, data_format, **kw)
    if out is None or not np.may_share_memory(out, x):
        np.testing.assert_array_equal(x, original)    # the input is untouched



@given(data=st.data())
def test_density_functions_hostile(data):
    # gdn_logdet, gdn_vjp and gdn_inverse on arrays in hostile memory, with special values:
    # the same bits as on a contiguous copy (their rows are made in logical order), the
    # input unchanged, a hostile out filled like a fresh one, and nothing else escapes
    dtype = data.draw(st.sampled_from(DTYPES))
    shape, data_format, n_channels = data.draw(shapes())
    keep = []
    x = _place(shape, dtype, *data.draw(memory(len(shape), dtype)), keep)[0]
    x[...] = data.draw(hostile_values(shape, dtype))[0]
    grad = _place(shape, dtype, *data.draw(memory(len(shape), dtype)), keep)[0]
    grad[...] = data.draw(hostile_values(shape, dtype))[0]
    beta, gamma, alpha, epsilon = data.draw(hostile_parameters(n_channels, dtype))
    beta = np.maximum(beta, float(np.finfo(dtype).tiny))     # the inverse needs beta > 0
    inverse, rectify = data.draw(st.booleans()), data.draw(st.booleans())
    isa = data.draw(st.sampled_from(VARIANTS))
    note(f"isa={isa} shape={shape} {data_format} {np.dtype(dtype)} strides={x.strides} "
         f"grad strides={grad.strides} alpha={alpha} epsilon={epsilon} inverse={inverse} "
         f"rectify={rectify}")
    original, plain_x, plain_grad = x.copy(), np.array(x), np.array(grad)
    kw = dict(rectify=rectify, alpha=alpha, epsilon=epsilon, data_format=data_format)
    n_positions = np.prod(shape) // n_channels
    logdet_shape = shape[:-1] if data_format == "channels_last" or len(shape) == 2 else \
        shape[:1] + shape[2:]
    out = _place(logdet_shape, x.dtype if dtype != np.float16 else np.float32,
                 *data.draw(memory(len(logdet_shape), dtype, False)), keep)[0]
    with _isa.use(isa), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")      # ConvergenceWarning where no x maps to y
        got = [cgdn.gdn_logdet(x, beta, gamma, inverse=inverse, **kw),
               *cgdn.gdn_vjp(x, beta, gamma, grad, inverse=inverse, **kw),
               cgdn.gdn_inverse(x, beta, gamma, **kw)]
        want = [cgdn.gdn_logdet(plain_x, beta, gamma, inverse=inverse, **kw),
                *cgdn.gdn_vjp(plain_x, beta, gamma, plain_grad, inverse=inverse, **kw),
                cgdn.gdn_inverse(plain_x, beta, gamma, **kw)]
        if out.dtype == got[0].dtype:
            out[...] = np.nan
            assert cgdn.gdn_logdet(x, beta, gamma, inverse=inverse, out=out, **kw) is out
            got.append(np.array(out))
            want.append(want[0])
    assert n_positions == got[0].size
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(x, original)
