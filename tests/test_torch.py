"""cgdn.torch against PyTorch and CompressAI 1.2.8's own GDN modules.

Needs torch (skipped without it, with the reason). The comparisons with CompressAI need
the compressai package; its ``__init__`` imports torchvision's compiled operators, which no
torchvision wheel provides for the CPU build of torch 2.13, so ``compressai.layers`` (GDN,
GDN1, the reparameterization) is loaded from the installed package without running the
package's ``__init__`` (see ``_compressai_layers``).
"""
import copy
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import cgdn

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
import cgdn.torch as ct  # noqa: E402

nn = torch.nn


def _compressai_layers():
    layers = ct._compressai_layers()
    if layers is None:
        pytest.skip("compressai is not installed (pip install --no-deps compressai==1.2.8)")
    return layers


@pytest.fixture(scope="module")
def cl():
    return _compressai_layers()


def _randomize(module, seed, below_bound=False):
    g = torch.Generator().manual_seed(seed)
    c = module.beta.shape[0]
    with torch.no_grad():
        module.beta.add_(torch.rand(c, generator=g, dtype=module.beta.dtype) * 0.5)
        module.gamma.add_(torch.rand(c, c, generator=g, dtype=module.gamma.dtype) * 0.1)
        if below_bound:        # raw values under the bounds: the lower bound acts
            module.beta[0] = 0.0
            module.gamma[0, 1] = -0.01
    return module


KINDS = [("GDN", {}), ("GDN", {"inverse": True, "beta_min": 0.01}), ("GDN1", {}),
         ("GDN1", {"inverse": True})]


def _pair(cl, kind, kwargs, c=16, dtype=torch.float32, seed=0):
    ref = _randomize(getattr(cl, kind)(c, **kwargs).to(dtype), seed)
    mine = getattr(ct, kind)(c, **kwargs).to(dtype)
    mine.load_state_dict(ref.state_dict(), strict=True)
    return ref, mine


def test_import_cgdn_does_not_import_torch():
    code = "import sys, cgdn; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_state_dict_names_and_shapes():
    layer = ct.GDN(5)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {"beta": (5,), "gamma": (5, 5), "beta_reparam.pedestal": (1,),
                      "beta_reparam.lower_bound.bound": (1,), "gamma_reparam.pedestal": (1,),
                      "gamma_reparam.lower_bound.bound": (1,)}
    assert [n for n, _ in layer.named_parameters()] == ["beta", "gamma"]


@pytest.mark.parametrize("kind, kwargs", KINDS)
def test_state_dicts_load_both_ways_strictly(cl, kind, kwargs):
    ref = _randomize(getattr(cl, kind)(6, **kwargs), 1)
    mine = getattr(ct, kind)(6, **kwargs)
    mine.load_state_dict(ref.state_dict(), strict=True)
    back = getattr(cl, kind)(6)
    back.load_state_dict(mine.state_dict(), strict=True)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(mine.state_dict()[key], value, rtol=0, atol=0)
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("kind, kwargs", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_equal_compressai(cl, kind, kwargs, dtype):
    ref, mine = _pair(cl, kind, kwargs, dtype=dtype)
    x = torch.randn(2, 16, 9, 11, dtype=dtype, generator=torch.Generator().manual_seed(2))
    want = ref(x)
    tol = 2e-6 if dtype == torch.float32 else 1e-13
    for memory_format in (torch.contiguous_format, torch.channels_last):
        got = mine(x.to(memory_format=memory_format))
        assert got.is_contiguous(memory_format=memory_format)
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    torch.testing.assert_close(mine(x[:, :, ::2, 1:]), ref(x[:, :, ::2, 1:]),
                               rtol=tol, atol=tol)     # other strides: copied, then the same


@pytest.mark.parametrize("kind, kwargs", KINDS)
def test_gradients_equal_compressai_in_float64(cl, kind, kwargs):
    """dL/dx and the gradients of the raw beta and gamma, through the lower bound (raw
    values put under it so that its gradient rule matters)."""
    ref = _randomize(getattr(cl, kind)(6, **kwargs).double(), 3, below_bound=True)
    mine = getattr(ct, kind)(6, **kwargs).double()
    mine.load_state_dict(ref.state_dict(), strict=True)
    rng = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64, generator=rng)
    g = torch.randn(2, 6, 5, 7, dtype=torch.float64, generator=rng)
    grads = []
    for module in (ref, mine):
        xg = x.clone().requires_grad_()
        (module(xg) * g).sum().backward()
        grads.append((xg.grad, module.beta.grad, module.gamma.grad))
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert grads[1][1][0] == 0 or grads[1][1][0] < 0    # the bound's rule at beta[0]


@pytest.mark.parametrize("inverse, rectify, alpha, epsilon",
                         [(False, False, 2.0, 0.5), (True, False, 2.0, 0.5),
                          (False, True, 2.0, 0.5), (False, False, 1.0, 1.0),
                          (True, True, 1.0, 1.0)])
def test_gradcheck_of_the_operator(inverse, rectify, alpha, epsilon):
    rng = torch.Generator().manual_seed(5)
    x = (torch.rand(2, 3, 4, 5, dtype=torch.float64, generator=rng) - 0.5).requires_grad_()
    beta = (torch.rand(3, dtype=torch.float64, generator=rng) + 0.5).requires_grad_()
    gamma = (torch.rand(3, 3, dtype=torch.float64, generator=rng) * 0.3 + 0.01).requires_grad_()

    def op(x, beta, gamma):
        return torch.ops.cgdn.gdn(x, beta, gamma, inverse, rectify, alpha, epsilon, 0)

    assert torch.autograd.gradcheck(op, (x, beta, gamma))


def test_opcheck():
    rng = torch.Generator().manual_seed(6)
    args = (torch.randn(2, 4, 3, 3, generator=rng), torch.rand(4, generator=rng) + 0.5,
            torch.rand(4, 4, generator=rng) * 0.2, False, False, 2.0, 0.5, 0)
    torch.library.opcheck(torch.ops.cgdn.gdn.default, args)
    torch.library.opcheck(torch.ops.cgdn.gdn.default, (args[0].requires_grad_(),) + args[1:])


def _model():
    torch.manual_seed(7)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), ct.GDN(8), nn.Conv2d(8, 8, 3, padding=1),
                         ct.GDN(8, inverse=True), nn.Conv2d(8, 4, 1), ct.GDN1(4))


def test_torch_compile_fullgraph_and_export():
    model = _model()
    x = torch.randn(1, 3, 12, 10)
    want = model(x)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), want, rtol=2e-6, atol=2e-6)
    xg = x.clone().requires_grad_()
    compiled(xg).sum().backward()
    xe = x.clone().requires_grad_()
    model(xe).sum().backward()
    torch.testing.assert_close(xg.grad, xe.grad, rtol=1e-5, atol=1e-6)
    exported = torch.export.export(model, (x,))
    ops = [n.target for n in exported.graph.nodes if "cgdn" in str(n.target)]
    assert len(ops) == 3
    torch.testing.assert_close(exported.module()(x), want, rtol=0, atol=0)


@pytest.mark.slow
def test_torch_compile_with_inductor():
    """The default backend (inductor, which compiles C++): opt-in, it takes 10-30 s."""
    model = _model()
    x = torch.randn(1, 3, 12, 10)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x), rtol=2e-6, atol=2e-6)


class _Spy:
    """Records the arrays cgdn.torch hands to the kernels."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = ct.apply_gdn

        def spy(x, beta, gamma, **kw):
            self.calls.append((x, kw))
            return real(x, beta, gamma, **kw)

        monkeypatch.setattr(ct, "apply_gdn", spy)


def test_contiguous_and_channels_last_are_used_in_place(monkeypatch):
    spy = _Spy(monkeypatch)
    layer = ct.GDN(8)
    x = torch.randn(2, 8, 6, 5)
    for memory_format, data_format in ((torch.contiguous_format, "channels_first"),
                                       (torch.channels_last, "channels_last")):
        xm = x.to(memory_format=memory_format)
        with torch.no_grad():
            y = layer(xm)
        seen, kw = spy.calls[-1]
        assert kw["data_format"] == data_format
        assert np.shares_memory(seen, xm.numpy())           # the input, not a copy
        assert np.shares_memory(kw["out"], y.numpy())       # written into the result
        assert y.stride() == xm.stride()


def test_threads_follow_torch_unless_given(monkeypatch):
    spy = _Spy(monkeypatch)
    x = torch.randn(1, 4, 8, 8)
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            ct.GDN(4)(x)
            assert spy.calls[-1][1]["num_threads"] == n
    finally:
        torch.set_num_threads(before)
    ct.GDN(4, num_threads=3)(x)
    assert spy.calls[-1][1]["num_threads"] == 3


def test_half_precision_and_empty_inputs():
    layer = ct.GDN(4)
    x = torch.randn(1, 4, 3, 3)
    for dtype in (torch.float16, torch.bfloat16):
        y = layer(x.to(dtype))
        assert y.dtype == dtype
        want = layer(x.to(dtype).float()).to(dtype)      # computed in float32, rounded
        torch.testing.assert_close(y, want, rtol=0, atol=0)
    assert layer(torch.empty(0, 4, 3, 3)).shape == (0, 4, 3, 3)


def test_bad_inputs_are_refused_clearly():
    layer = ct.GDN(4)
    with pytest.raises(ValueError, match=r"GDN\(4\) expects \(N, 4, \.\.\.\) inputs, got "
                                         r"shape \(1, 3, 2, 2\)"):
        layer(torch.ones(1, 3, 2, 2))
    with pytest.raises(TypeError, match=r"floating-point.*torch.int64.*x.float\(\)"):
        layer(torch.ones(1, 4, 2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="takes a torch.Tensor"):
        layer(np.ones((1, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="in_channels must be an int >= 1"):
        ct.GDN(0)
    with pytest.raises(TypeError, match="in_channels"):
        ct.GDN(2.0)
    with pytest.raises(ValueError, match="beta_min"):
        ct.GDN(2, beta_min=-1.0)
    with pytest.raises(ValueError, match="num_threads"):
        ct.GDN(2, num_threads=0)


def _compressai_stack(cl, n=8):
    """g_a / g_s of CompressAI's bmshj2018_factorized, from its own layer classes."""
    torch.manual_seed(8)

    def conv(i, o):
        return nn.Conv2d(i, o, 5, stride=2, padding=2)

    def deconv(i, o):
        return nn.ConvTranspose2d(i, o, 5, stride=2, padding=2, output_padding=1)

    model = nn.Module()
    model.g_a = nn.Sequential(conv(3, n), cl.GDN(n), conv(n, n), cl.GDN(n), conv(n, n),
                              cl.GDN1(n))
    model.g_s = nn.Sequential(deconv(n, n), cl.GDN(n, inverse=True, beta_min=0.01),
                              deconv(n, 3))
    for _, m in model.named_modules():
        if hasattr(m, "beta_reparam"):
            _randomize(m, 9)
    return model


def test_accelerate_a_compressai_model(cl):
    model = _compressai_stack(cl)
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        want = model.g_s(model.g_a(x))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = {n: p for n, p in model.named_parameters()}
    report = ct.accelerate(model)
    assert list(report) == ["g_a.1", "g_a.3", "g_a.5", "g_s.1"]
    assert isinstance(report["g_a.5"], ct.GDN1) or report["g_a.5"].simplified
    assert report["g_s.1"].inverse and not report["g_a.1"].inverse
    assert all(isinstance(m, ct.GDN) for m in report.values())
    assert {n: p for n, p in model.named_parameters()} == params      # the same tensors
    assert list(model.state_dict()) == list(state)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(model.g_s(model.g_a(x)), want, rtol=1e-5, atol=1e-5)
    model.load_state_dict(state, strict=True)
    assert ct.accelerate(model) == report                             # again: nothing new


def test_accelerate_replaces_a_shared_module_once(cl):
    shared = cl.GDN(4)
    model = nn.Sequential(shared, nn.Identity(), shared)
    report = ct.accelerate(model, num_threads=1)
    assert model[0] is model[2] and isinstance(model[0], ct.GDN)
    assert model[0].num_threads == 1 and list(report) == ["0"]


def test_accelerate_refuses_nothing_and_lone_modules(cl):
    with pytest.raises(ValueError, match="no GDN module"):
        ct.accelerate(nn.Sequential(nn.Conv2d(3, 3, 1)))
    with pytest.raises(ValueError, match="from_module"):
        ct.accelerate(cl.GDN(3))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        ct.accelerate({"a": 1})


def test_round_trip_through_cgdn_layers(cl, tmp_path):
    """from_compressai -> save_layers -> load_layers -> load_into a fresh model, strict:
    the model computes what the first one did."""
    model = _compressai_stack(cl)
    layers = cgdn.from_compressai(model)
    assert layers["g_s.1"].beta_min == pytest.approx(0.01)
    cgdn.save_layers(tmp_path / "layers.npz", layers)
    fresh = _compressai_stack(cl)
    for _, m in fresh.named_modules():
        if hasattr(m, "beta_reparam"):
            _randomize(m, 11)
    fresh.load_state_dict({k: v for k, v in model.state_dict().items()
                           if ".beta" not in k and ".gamma" not in k}, strict=False)
    loaded = ct.load_into(fresh, cgdn.load_layers(tmp_path / "layers.npz"))
    assert sorted(loaded) == ["g_a.1", "g_a.3", "g_a.5", "g_s.1"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fresh.g_s(fresh.g_a(x)), model.g_s(model.g_a(x)))


def test_load_into_refuses_mismatches(cl):
    model = _compressai_stack(cl)
    with pytest.raises(ValueError, match="no GDN module at 'g_a.2'"):
        ct.load_into(model, {"g_a.2": cgdn.GDN(8)})
    with pytest.raises(ValueError, match=r"'g_s.1'.*inverse=True"):
        ct.load_into(model, {"g_s.1": cgdn.GDN(8)})
    with pytest.raises(ValueError, match=r"'g_a.1'"):
        ct.load_into(model, {"g_a.1": cgdn.GDN(4)})


def test_export_as_torch_loads_strictly(cl):
    layers = [cgdn.GDN(4, name="g_a/1"), cgdn.GDN(4, inverse=True, beta_min=0.01, name="g_s/1")]
    state = cgdn.export_compressai(layers, as_torch=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    module = cl.GDN(4, inverse=True)
    module.load_state_dict({k[len("g_s.1."):]: v for k, v in state.items()
                            if k.startswith("g_s.1.")}, strict=True)
    assert module.beta_reparam.lower_bound.bound.item() == pytest.approx(0.01**0.5, rel=1e-6)
    with pytest.raises(TypeError, match="as_torch"):
        cgdn.export_compressai(layers, as_torch="yes")


def test_from_compressai_reads_cgdn_modules():
    model = nn.Sequential(ct.GDN1(3, inverse=True), ct.GDN(3, rectify=True))
    layers = cgdn.from_compressai(model)
    assert (layers["0"].alpha, layers["0"].epsilon, layers["0"].inverse) == (1.0, 1.0, True)
    assert layers["1"].rectify
    x = torch.rand(1, 3, 4, 4) - 0.5
    with torch.no_grad():
        for name, module in model.named_children():
            np.testing.assert_allclose(layers[name](x.numpy()), module(x).numpy(), rtol=1e-6,
                                       atol=1e-7)


def test_inference_path_equals_the_operator_and_sees_every_change():
    """Under no_grad, eager calls skip the operator's dispatch and reuse the effective
    parameters while the raw ones are unchanged: same bits as the operator, and a change
    in place, through .data, by load_state_dict or of a buffer is seen at the next call."""
    layer = ct.GDN(6, inverse=True)
    x = torch.randn(2, 6, 5, 4, generator=torch.Generator().manual_seed(12))

    def by_operator():
        return torch.ops.cgdn.gdn(x, layer.beta_reparam(layer.beta),
                                  layer.gamma_reparam(layer.gamma), True, False, 2.0, 0.5, 0)

    changes = [lambda: layer.beta.data.mul_(1.5),
               lambda: layer.gamma.data.add_(0.01),
               lambda: layer.load_state_dict(ct.GDN(6, inverse=True, gamma_init=0.3)
                                             .state_dict()),
               lambda: layer.beta_reparam.lower_bound.bound.fill_(2.0)]
    with torch.no_grad():
        before = layer(x)
        assert torch.equal(before, by_operator())
        for change in changes:
            change()
            after = layer(x)
            assert torch.equal(after, by_operator())
            assert not torch.equal(after, before)
            before = after


def _held(kind, y):
    """Something that refers to y's memory, the way users keep results."""
    if kind == "tensor":
        return y
    if kind == "view":
        return y[0, 1:]
    if kind == "numpy":
        return y.numpy()
    return torch.utils.dlpack.to_dlpack(y)


def _value(kind, held):
    if kind == "dlpack":      # a capsule is read once (it then lets go of the memory)
        return torch.utils.dlpack.from_dlpack(held).clone()
    return torch.as_tensor(held).clone()


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("kind", ["tensor", "view", "numpy", "dlpack"])
def test_an_output_in_use_is_never_overwritten(kind, memory_format):
    """Inference outputs go to the memory of the previous output only once nothing refers
    to it: a held tensor, a view, a NumPy array or a DLPack capsule keeps it."""
    layer = ct.GDN(5)
    x = torch.randn(2, 5, 7, 6, generator=torch.Generator().manual_seed(3)).to(
        memory_format=memory_format)
    with torch.no_grad():
        first = layer(x)
        address = first.data_ptr()
        want = (first[0, 1:] if kind == "view" else first).clone()
        held = _held(kind, first)
        del first
        second = layer(2 * x)                     # must not write where `held` lives
        assert second.data_ptr() != address
        assert torch.equal(_value(kind, held), want)
        assert second.is_contiguous(memory_format=memory_format)
        torch.testing.assert_close(second, layer.__class__.from_module(layer)(2 * x))
        del held, second
        third = layer(3 * x)                       # free again: reused
        assert third.data_ptr() == address
        assert third.stride() == x.stride()


def test_reuse_output_setting():
    layer = ct.GDN(4, reuse_output=False)
    x = torch.randn(1, 4, 5, 5)
    assert repr(layer) == "GDN(4, reuse_output=False)"
    with torch.no_grad():
        y = layer(x)
        address = y.data_ptr()
        held = [layer(x) for _ in range(3)]     # nothing kept by the module
        assert all(h.data_ptr() != address for h in held)
        layer.reuse_output = True
        a = layer(x)
        b_address = a.data_ptr()
        del a
        assert layer(x).data_ptr() == b_address
        copied = copy.deepcopy(layer)            # copies do not share the memory
        assert copied(x).data_ptr() != b_address
        pickled = pickle.loads(pickle.dumps(layer))
        assert pickled(x).data_ptr() != b_address
        torch.testing.assert_close(pickled(x), y, rtol=0, atol=0)
        with torch.enable_grad():                 # gradients: a fresh output each call
            g = layer(x.requires_grad_())
            assert g.grad_fn is not None and g.data_ptr() != b_address
    with pytest.raises(TypeError, match="reuse_output must be True or False"):
        ct.GDN(4, reuse_output=1)
    with pytest.raises(TypeError, match="reuse_output must be True, False or None"):
        ct.accelerate(nn.Sequential(ct.GDN(4)), reuse_output="no")
    model = nn.Sequential(ct.GDN(4), ct.GDN(4, reuse_output=False))
    assert [m.reuse_output for m in ct.accelerate(model).values()] == [True, False]
    assert [m.reuse_output for m in ct.accelerate(model, reuse_output=False).values()] == [
        False, False]


def test_concurrent_calls_of_one_module_keep_their_outputs():
    """Threads sharing a module each keep their own outputs while the others call it."""
    layer = ct.GDN(6, inverse=True)
    inputs = [torch.randn(1, 6, 9, 9, generator=torch.Generator().manual_seed(i))
              for i in range(4)]
    with torch.no_grad():
        want = [ct.GDN.from_module(layer, num_threads=1)(x).clone() for x in inputs]
    barrier = threading.Barrier(len(inputs))
    errors = []

    def work(i):
        with torch.no_grad():
            for _ in range(50):
                y = layer(inputs[i])
                barrier.wait()                     # all outputs alive at once
                if not torch.equal(y, want[i]):
                    errors.append(i)
                barrier.wait()
                del y

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
