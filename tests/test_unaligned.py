"""Arrays whose elements do not start at a multiple of their size (np.frombuffer at an odd
offset, memmaps at odd offsets, the blocks dask.distributed workers receive): every entry
point reads them through an aligned copy and gives the bits an aligned array gives."""
import numpy as np
import pytest

import cgdn

DTYPES = [np.float16, np.float32, np.float64]


def _unaligned(values, offset):
    """A C-contiguous copy of ``values`` starting ``offset`` bytes into a bytearray, so that
    (for offset not a multiple of the item size) its elements are not aligned."""
    values = np.ascontiguousarray(values)
    raw = bytearray(values.nbytes + offset)
    out = np.frombuffer(raw, values.dtype, count=values.size, offset=offset)
    out = out.reshape(values.shape)
    out[...] = values
    return out


def _inputs(rng, dtype, layout, c=5):
    shape = (2, 6, 7, c) if layout == "channels_last" else (2, c, 6, 7)
    x = rng.standard_normal(shape).astype(dtype)
    beta = rng.uniform(0.5, 1.5, c).astype(dtype)
    gamma = rng.uniform(0, 0.3, (c, c)).astype(dtype)
    return x, beta, gamma


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
@pytest.mark.parametrize("offset", range(1, 8))
def test_apply_gdn_any_byte_offset(rng, dtype, layout, offset):
    x, beta, gamma = _inputs(rng, dtype, layout)
    expected = cgdn.apply_gdn(x, beta, gamma, data_format=layout)
    xu = _unaligned(x, offset)
    aligned = offset % np.dtype(dtype).itemsize == 0
    assert xu.flags.aligned == aligned
    got = cgdn.apply_gdn(xu, _unaligned(beta, offset), _unaligned(gamma, offset),
                         data_format=layout)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(xu, x)              # the input is not changed
    # into an unaligned out, and in place in an unaligned array
    out = _unaligned(np.zeros_like(x), offset)
    assert cgdn.apply_gdn(xu, beta, gamma, data_format=layout, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert cgdn.apply_gdn(xu, beta, gamma, data_format=layout, out=xu) is xu
    np.testing.assert_array_equal(xu, expected)


@pytest.mark.parametrize("offset", [1, 3, 4])
def test_tf_style_gdn_and_layers(rng, offset):
    x, _, _ = _inputs(rng, np.float32, "channels_last", c=4)
    xu = _unaligned(x, offset)
    store = cgdn.ParameterStore()
    np.testing.assert_array_equal(cgdn.gdn(xu, name="a", store=store),
                                  cgdn.gdn(x, name="a", store=store, reuse=True))
    layer = cgdn.GDN(4, inverse=True)
    np.testing.assert_array_equal(layer(xu), layer(x))


@pytest.mark.parametrize("offset", [1, 3, 5])
def test_density_functions(rng, offset):
    x = rng.standard_normal((40, 3))
    beta, gamma = np.ones(3), 0.1 + 0.05 * np.eye(3)
    y = cgdn.apply_gdn(x, beta, gamma)
    xu, yu = _unaligned(x, offset), _unaligned(y, offset)
    np.testing.assert_array_equal(cgdn.gdn_inverse(yu, beta, gamma),
                                  cgdn.gdn_inverse(y, beta, gamma))
    np.testing.assert_array_equal(cgdn.gdn_logdet(xu, beta, gamma),
                                  cgdn.gdn_logdet(x, beta, gamma))
    g = np.ones_like(x)
    for a, b in zip(cgdn.gdn_vjp(xu, beta, gamma, _unaligned(g, offset)),
                    cgdn.gdn_vjp(x, beta, gamma, g)):
        np.testing.assert_array_equal(a, b)


def test_strided_and_unaligned_views(rng):
    # a view that is both strided and unaligned (every other pixel of an odd-offset buffer)
    x, beta, gamma = _inputs(rng, np.float32, "channels_last", c=3)
    wide = _unaligned(np.repeat(x, 2, axis=2), 2)
    view = wide[:, :, ::2]
    assert not view.flags.aligned and not view.flags.c_contiguous
    np.testing.assert_array_equal(cgdn.apply_gdn(view, beta, gamma),
                                  cgdn.apply_gdn(x, beta, gamma))
