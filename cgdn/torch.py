"""cgdn inside PyTorch: a GDN module with CompressAI's state dict, and one call that
puts it in place of a model's CompressAI GDN modules.

``import cgdn`` never imports torch; ``import cgdn.torch`` does (``pip install
"cgdn[torch]"``). The computation is the custom operator ``torch.ops.cgdn.gdn`` (with a
fake implementation, so ``torch.compile(..., fullgraph=True)`` and ``torch.export``
trace through it, and gradients from :func:`cgdn.gdn_vjp`, the operator
``torch.ops.cgdn.gdn_vjp``). Contiguous NCHW tensors and 4-d tensors in
``torch.channels_last`` memory format are read and written in place, without a copy or
a transpose; the output has the input's memory format.
"""
import threading
import weakref

import numpy as np

try:
    import torch
except ImportError as error:      # pragma: no cover - only without torch
    raise ImportError("cgdn.torch needs PyTorch: pip install 'cgdn[torch]' (or torch)") from error
from torch import nn

from cgdn._density import gdn_vjp
from cgdn._gdn import apply_gdn
from cgdn._interop import (_compressai_buffers, _is_compressai_gdn, compressai_settings,
                           is_gdn1)
from cgdn._validation import check_positive_real

__all__ = ["GDN", "GDN1", "accelerate", "load_into"]

_DTYPES = (torch.float32, torch.float64)
_REPARAM_OFFSET = 2.0**-18


# --------------------------------------------------------------------------------------
# The operators

def _numpy_views(x, out):
    """NumPy views of ``x`` and ``out`` in one layout, and its data_format.

    ``out`` is laid out as ``torch.empty_like(x)`` lays it out (made by it, or a reused
    output of the same layout), so it is contiguous, 4-d channels_last, or (for inputs of
    other strides) has x's strides; only in that last case is a contiguous temporary
    used (the caller copies it into ``out``)."""
    if out.is_contiguous():
        return x.contiguous().numpy(), out.numpy(), "channels_first", None
    if out.dim() == 4 and out.is_contiguous(memory_format=torch.channels_last):
        xv = x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
        return xv.numpy(), out.permute(0, 2, 3, 1).numpy(), "channels_last", None
    tmp = torch.empty(x.shape, dtype=x.dtype)
    return x.contiguous().numpy(), tmp.numpy(), "channels_first", tmp


def _threads(num_threads):
    return num_threads if num_threads > 0 else torch.get_num_threads()


def _compute_dtype(dtype):
    return dtype if dtype in _DTYPES else torch.float32


def _compute(x, beta, gamma_tf, inverse, rectify, alpha, epsilon, num_threads, out=None):
    """cgdn on a CPU tensor with NumPy parameters (gamma in TF's [in, out], x's dtype),
    into ``out`` (as ``torch.empty_like(x)`` makes it; a new one by default)."""
    if out is None:
        out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    xv, outv, data_format, tmp = _numpy_views(x.detach(), out)
    apply_gdn(xv, beta, gamma_tf, inverse=inverse, rectify=rectify, alpha=alpha,
              epsilon=epsilon, data_format=data_format, out=outv,
              num_threads=_threads(num_threads))
    if tmp is not None:
        out.copy_(tmp)
    return out


@torch.library.custom_op("cgdn::gdn", mutates_args=(), device_types="cpu")
def _gdn_op(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, inverse: bool,
            rectify: bool, alpha: float, epsilon: float, num_threads: int) -> torch.Tensor:
    dtype = _compute_dtype(x.dtype)     # float16 / bfloat16: computed in float32
    beta = beta.detach().to(dtype).numpy()
    gamma = gamma.detach().to(dtype).numpy().T     # [out, in] -> TF's [in, out]
    out = _compute(x.to(dtype), beta, gamma, inverse, rectify, alpha, epsilon, num_threads)
    return out.to(x.dtype)


@_gdn_op.register_fake
def _gdn_fake(x, beta, gamma, inverse, rectify, alpha, epsilon, num_threads):
    return torch.empty_like(x)


@torch.library.custom_op("cgdn::gdn_vjp", mutates_args=(), device_types="cpu")
def _gdn_vjp_op(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor,
                grad: torch.Tensor, inverse: bool, rectify: bool, alpha: float, epsilon: float,
                num_threads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dtype = _compute_dtype(x.dtype)
    xv = x.detach().to(dtype).contiguous().numpy()
    gv = grad.detach().to(dtype).contiguous().numpy()
    gx, gb, gg = gdn_vjp(xv, beta.detach().to(dtype).numpy(),
                         gamma.detach().to(dtype).numpy().T, gv, inverse=inverse,
                         rectify=rectify, alpha=alpha, epsilon=epsilon,
                         data_format="channels_first", num_threads=_threads(num_threads))
    grad_x = torch.empty_like(x)
    grad_x.copy_(torch.from_numpy(gx))
    return (grad_x, torch.from_numpy(gb).to(beta.dtype),
            torch.from_numpy(gg.T.copy()).to(gamma.dtype))


@_gdn_vjp_op.register_fake
def _gdn_vjp_fake(x, beta, gamma, grad, inverse, rectify, alpha, epsilon, num_threads):
    return torch.empty_like(x), torch.empty_like(beta), torch.empty_like(gamma)


def _setup_context(ctx, inputs, output):
    x, beta, gamma, *settings = inputs
    ctx.save_for_backward(x, beta, gamma)
    ctx.settings = settings


def _backward(ctx, grad):
    x, beta, gamma = ctx.saved_tensors
    gx, gb, gg = _gdn_vjp_op(x, beta, gamma, grad, *ctx.settings)
    return gx, gb, gg, None, None, None, None, None


_gdn_op.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------------------
# Output memory a module reuses

_REUSE_LOCK = threading.Lock()


class _ReusedOutput:
    """The memory of a module's last output, handed out again once no tensor uses it.

    A tensor made by ``torch.from_numpy(view)`` keeps ``view`` alive for as long as its
    storage lives (views of the tensor, arrays from ``Tensor.numpy()`` and DLPack
    capsules included) and lets go of it when the storage is freed. Each output gets a
    new view of ``block``; a weak reference to that view tells whether any tensor still
    uses the memory, so the memory is handed out again only when it is free.

    A fresh output of many megabytes costs its page faults on every call (the
    allocator takes such blocks from the kernel and gives them back when freed): about
    a third of the call at (1, 192, 256, 384)."""

    def __init__(self, key, block, permute):
        self.key, self.block, self.permute = key, block, permute
        self.view = None

    def claim(self):
        """A tensor on the block, or None while an earlier one still uses it."""
        if self.view is not None and self.view() is not None:
            return None
        view = self.block[...]
        self.view = weakref.ref(view)
        out = torch.from_numpy(view)
        return out.permute(0, 3, 1, 2) if self.permute else out


def _output_key(x):
    """How the output of ``x`` is laid out, if a reused block can hold it."""
    if x.is_contiguous():
        return (x.dtype, tuple(x.shape), False)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return (x.dtype, tuple(x.shape), True)
    return None


def _reused_output(module, x):
    """``torch.empty_like(x)``, on the memory of the module's last output when it is free
    and of the same layout (see :class:`_ReusedOutput`)."""
    key = _output_key(x)
    if key is None or x.numel() == 0:
        return torch.empty_like(x)
    with _REUSE_LOCK:
        entry = module.__dict__.get("_cgdn_output")
        if entry is not None and entry.key == key:
            out = entry.claim()
            if out is not None:
                return out
            return torch.empty_like(x)      # the last output is still in use: keep it
        dtype, shape, permute = key
        if permute:
            shape = (shape[0], shape[2], shape[3], shape[1])
        block = torch.empty(shape, dtype=dtype).numpy()     # torch's allocator, as before
        entry = _ReusedOutput(key, block, permute)
        module.__dict__["_cgdn_output"] = entry
        return entry.claim()


# --------------------------------------------------------------------------------------
# The module

class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound) with TensorFlow's gradient: it passes where x >= bound, or where it
    moves x up towards the bound (a descent step x -= lr * g with g < 0)."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        return grad * ((x >= bound) | (grad < 0)), None


class _LowerBound(nn.Module):
    def __init__(self, bound):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x):
        return _LowerBoundFunction.apply(x, self.bound)


class _NonNegative(nn.Module):
    """value = max(raw, sqrt(minimum + offset**2))**2 - offset**2, CompressAI's buffers."""

    def __init__(self, minimum=0.0, reparam_offset=_REPARAM_OFFSET):
        super().__init__()
        pedestal = float(reparam_offset) ** 2
        self.register_buffer("pedestal", torch.tensor([pedestal]))
        self.lower_bound = _LowerBound((float(minimum) + pedestal) ** 0.5)

    def init(self, value):
        return torch.sqrt(torch.clamp_min(value + self.pedestal, float(self.pedestal)))

    def forward(self, raw):
        return self.lower_bound(raw) ** 2 - self.pedestal


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class GDN(nn.Module):
    """GDN / IGDN as a PyTorch module, computed by cgdn's kernels on the CPU.

    The parameters and buffers are CompressAI's (``beta`` of shape ``(C,)``, ``gamma``
    of shape ``(C, C)`` in PyTorch's ``[out, in]`` orientation, both reparameterized,
    and ``beta_reparam.pedestal``, ``beta_reparam.lower_bound.bound``,
    ``gamma_reparam.pedestal``, ``gamma_reparam.lower_bound.bound`` of shape ``(1,)``),
    so a state dict of ``compressai.layers.GDN(C)`` loads into it with ``strict=True``
    and the other way round. Gradients reach ``beta`` and ``gamma`` through the
    reparameterization as in CompressAI (TensorFlow's lower-bound gradient).

    Parameters
    ----------
    in_channels : int
    inverse : bool, default False
        IGDN (multiplies by the pool instead of dividing).
    beta_min : float, default 1e-6
        Lower bound of the effective beta.
    gamma_init : float, default 0.1
        The initial effective gamma is ``gamma_init`` times the identity.
    simplified : bool, default False
        GDN1 (Johnston et al., 2019): ``alpha=1, epsilon=1``, ``x / (beta + gamma |x|)``;
        :class:`GDN1` is the same with this set.
    rectify : bool, default False
        Apply a ReLU to the input first (tensorflow-compression's option; CompressAI has
        none, so such a module has no CompressAI counterpart).
    num_threads : int, optional
        Threads of each call; ``torch.get_num_threads()`` at call time by default.
    reuse_output : bool, default True
        In inference (gradients off, eager mode), write each output into the memory of
        the module's previous output when no tensor uses that memory any more (see
        Notes); False allocates every output afresh.

    Notes
    -----
    Inputs are ``(N, C, ...)`` tensors. Float32 and float64 CPU tensors run cgdn's
    kernels (float16 and bfloat16 are computed in float32); on other devices the module
    computes CompressAI's formula with torch operations. Contiguous NCHW tensors and
    4-d tensors in ``torch.channels_last`` memory format are used in place; other
    strides are copied first. First-order gradients only.

    Output memory: a fresh output of many megabytes costs page faults on every call
    (about a third of the call at ``(1, 192, 256, 384)``), so with ``reuse_output`` the
    module keeps the memory of its last output and writes the next output of the same
    shape, dtype and memory format into it once that output is gone: once no tensor,
    view of it, ``Tensor.numpy()`` array or DLPack capsule refers to it. An output still
    in use is never overwritten (the call then allocates a new one). The cost is one
    output's memory held per module between calls (dropped with the module or by
    setting ``reuse_output = False``); such outputs are made by ``torch.from_numpy``,
    so they cannot be grown in place (``Tensor.resize_`` to a larger size raises).

    Examples
    --------
    >>> import torch
    >>> import cgdn.torch
    >>> layer = cgdn.torch.GDN(3)
    >>> x = torch.ones(1, 3, 4, 4)
    >>> y = layer(x)
    >>> torch.allclose(y, x / torch.sqrt(torch.tensor(1.0 + 0.1)))
    True
    >>> sorted(layer.state_dict())
    ['beta', 'beta_reparam.lower_bound.bound', 'beta_reparam.pedestal', 'gamma', 'gamma_reparam.lower_bound.bound', 'gamma_reparam.pedestal']
    """

    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1, *,
                 simplified=False, rectify=False, num_threads=None, reuse_output=True):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.inverse = bool(inverse)
        self.simplified = bool(simplified)
        self.rectify = bool(rectify)
        self.num_threads = (None if num_threads is None
                            else _check_int("num_threads", num_threads, 1))
        self.reuse_output = reuse_output
        beta_min = check_positive_real("beta_min", beta_min, allow_zero=True)
        gamma_init = check_positive_real("gamma_init", gamma_init, allow_zero=True)
        self.beta_reparam = _NonNegative(beta_min)
        self.gamma_reparam = _NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))

    @property
    def reuse_output(self):
        return self.__dict__["_reuse_output"]

    @reuse_output.setter
    def reuse_output(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"reuse_output must be True or False, got {value!r}")
        self.__dict__["_reuse_output"] = bool(value)
        if not value:
            self.__dict__.pop("_cgdn_output", None)

    def __getstate__(self):   # copies and pickles leave the caches behind
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k not in ("_cgdn_output", "_cgdn_effective")}

    @property
    def alpha(self):
        return 1.0 if self.simplified else 2.0

    @property
    def epsilon(self):
        return 1.0 if self.simplified else 0.5

    def extra_repr(self):
        parts = [str(self.in_channels)]
        if self.inverse:
            parts.append("inverse=True")
        if self.simplified:
            parts.append("simplified=True")
        if self.rectify:
            parts.append("rectify=True")
        if self.num_threads is not None:
            parts.append(f"num_threads={self.num_threads}")
        if not self.reuse_output:
            parts.append("reuse_output=False")
        return ", ".join(parts)

    def __repr__(self):    # one line: the reparameterizations are CompressAI's buffers
        return f"{type(self).__name__}({self.extra_repr()})"

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a torch.Tensor, got "
                            f"{type(x).__name__}")
        if x.dim() < 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}({self.in_channels}) expects (N, {self.in_channels}, "
                f"...) inputs, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{type(self).__name__} takes floating-point tensors, got "
                            f"{x.dtype} (use x.float())")

    def forward(self, x):
        self._check_input(x)
        settings = (self.inverse, self.rectify, self.alpha, self.epsilon, self.num_threads or 0)
        if (x.device.type == "cpu" and x.dtype in _DTYPES and not torch.is_grad_enabled()
                and not torch.compiler.is_compiling()):
            # inference in eager mode: the operator's computation, without its dispatch
            # and with the effective parameters of the last call while they are unchanged
            out = _reused_output(self, x) if self.reuse_output else None
            return _compute(x, *self._effective_numpy(x.dtype), *settings, out=out)
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        if x.device.type != "cpu":
            return self._torch_formula(x, beta, gamma)
        return _gdn_op(x, beta, gamma, *settings)

    def _effective_numpy(self, dtype):
        """``(beta, gamma in TF's [in, out])`` as C-contiguous arrays of ``dtype``, computed
        as the operator's path computes them, and kept while the raw parameters and the
        buffers hold the same values (compared at each call, so changes through ``.data``
        or a replaced tensor are seen too). The comparison is NumPy's: a torch operation
        here would wake torch's OpenMP threads, which then spin beside cgdn's."""
        raw = [t.detach().numpy() for t in (
            self.beta, self.gamma, self.beta_reparam.pedestal,
            self.beta_reparam.lower_bound.bound, self.gamma_reparam.pedestal,
            self.gamma_reparam.lower_bound.bound)]
        cached = self.__dict__.get("_cgdn_effective")
        if (cached is not None and cached[0] == dtype
                and all(a.dtype == b.dtype and np.array_equal(a, b)
                        for a, b in zip(raw, cached[1]))):
            return cached[2], cached[3]
        with torch.no_grad():
            beta = self.beta_reparam(self.beta).to(dtype).numpy()
            gamma = self.gamma_reparam(self.gamma).to(dtype).numpy().T.copy()
        self.__dict__["_cgdn_effective"] = (dtype, [a.copy() for a in raw], beta, gamma)
        return beta, gamma

    def _torch_formula(self, x, beta, gamma):
        """CompressAI's formula in torch operations (for devices other than the CPU)."""
        if self.rectify:
            x = torch.relu(x)
        c = self.in_channels
        pool = x.abs() if self.simplified else x * x
        shape = (c, c) + (1,) * (x.dim() - 2)
        conv = {3: nn.functional.conv1d, 4: nn.functional.conv2d, 5: nn.functional.conv3d}
        if x.dim() in conv:
            norm = conv[x.dim()](pool, gamma.reshape(shape).to(x.dtype), beta.to(x.dtype))
        else:
            norm = torch.einsum("ij,nj...->ni...", gamma.to(x.dtype), pool) + beta.to(
                x.dtype).reshape((c,) + (1,) * (x.dim() - 2))
        norm = norm if self.simplified else torch.sqrt(norm)
        return x * norm if self.inverse else x / norm

    @classmethod
    def from_module(cls, module, *, num_threads=None):
        """A :class:`GDN` equal to a CompressAI ``GDN`` / ``GDN1`` module (or another
        :class:`GDN`), sharing its parameter tensors and copying its buffers.

        Examples
        --------
        >>> import cgdn.torch
        >>> a = cgdn.torch.GDN(4, inverse=True, beta_min=0.01)
        >>> b = cgdn.torch.GDN.from_module(a)
        >>> b.beta is a.beta, b.inverse
        (True, True)
        """
        if not _is_compressai_gdn(module):
            raise TypeError(f"module must be a CompressAI GDN/GDN1 module, got "
                            f"{type(module).__name__}")
        settings = compressai_settings(_buffers_of(module), "")
        simplified = is_gdn1(module)
        new = cls(int(module.beta.shape[0]), inverse=bool(module.inverse),
                  beta_min=settings["beta_min"], simplified=simplified,
                  rectify=bool(getattr(module, "rectify", False)), num_threads=num_threads,
                  reuse_output=getattr(module, "reuse_output", True))
        new.beta, new.gamma = module.beta, module.gamma
        for leaf, value in _buffers_of(module).items():
            target = new.get_buffer(leaf)
            target.data = value.detach().clone()
        return new


class GDN1(GDN):
    """:class:`GDN` with ``simplified=True`` (GDN1: ``y = x / (beta + gamma |x|)``).

    Examples
    --------
    >>> import cgdn.torch
    >>> cgdn.torch.GDN1(8, inverse=True)
    GDN1(8, inverse=True, simplified=True)
    """

    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1, *,
                 rectify=False, num_threads=None, reuse_output=True):
        super().__init__(in_channels, inverse, beta_min, gamma_init, simplified=True,
                         rectify=rectify, num_threads=num_threads, reuse_output=reuse_output)


def _buffers_of(module):
    return {leaf: value for leaf, value in _compressai_buffers(module).items()
            if isinstance(value, torch.Tensor)}


# --------------------------------------------------------------------------------------
# Whole models

def _check_module(model, name="model"):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")


def accelerate(model, *, num_threads=None, reuse_output=None):
    """Put :class:`GDN` modules in place of a model's CompressAI ``GDN`` / ``GDN1``.

    Each new module shares the old one's ``beta`` and ``gamma`` parameters (an optimizer
    holding them keeps working) and copies its buffers, so the state dict keys and
    values are unchanged and ``model.load_state_dict`` works as before. Modules are
    recognized by their attributes (``beta``, ``gamma``, ``beta_reparam``,
    ``gamma_reparam``, ``inverse``; GDN1 by its class name), so subclasses and copies of
    CompressAI's classes are found as well. A module registered at several places is
    replaced by one new module everywhere.

    Parameters
    ----------
    model : torch.nn.Module
    num_threads : int, optional
        Threads of each call of the new modules (and of the model's :class:`GDN`
        modules already there); ``torch.get_num_threads()`` at call time by default.
    reuse_output : bool, optional
        Set :class:`GDN`'s ``reuse_output`` on every GDN module of the model; by default
        new modules reuse their output memory and those already there keep their setting.

    Returns
    -------
    dict of str to GDN
        Every GDN module of the model, by path, now cgdn's.

    Raises
    ------
    ValueError
        If the model has no GDN module, or is itself one (use
        :meth:`GDN.from_module`).

    Examples
    --------
    >>> import torch
    >>> import cgdn.torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5), cgdn.torch.GDN(8))
    >>> cgdn.torch.accelerate(model)
    {'1': GDN(8)}
    """
    _check_module(model)
    if num_threads is not None:
        num_threads = _check_int("num_threads", num_threads, 1)
    if reuse_output is not None and not isinstance(reuse_output, (bool, np.bool_)):
        raise TypeError(f"reuse_output must be True, False or None, got {reuse_output!r}")
    if _is_compressai_gdn(model):
        raise ValueError("model is itself a GDN module, which cannot be replaced in place: "
                         "use cgdn.torch.GDN.from_module(model)")
    replaced = {}
    for parent in list(model.modules()):
        for child_name, child in list(parent._modules.items()):   # shared ones too
            if isinstance(child, GDN):
                if num_threads is not None:
                    child.num_threads = num_threads
            elif _is_compressai_gdn(child):
                if id(child) not in replaced:
                    new = GDN.from_module(child, num_threads=num_threads)
                    new.train(child.training)
                    replaced[id(child)] = new
                setattr(parent, child_name, replaced[id(child)])
    report = {name: m for name, m in model.named_modules() if isinstance(m, GDN)}
    if reuse_output is not None:
        for m in report.values():
            m.reuse_output = reuse_output
    if not report:
        names = [name for name, _ in model.named_modules()]
        raise ValueError(f"the model has no GDN module to accelerate (modules: "
                         f"{names[:8]}{', ...' if len(names) > 8 else ''})")
    return report


def load_into(model, layers, *, strict=True):
    """Load cgdn layers (:class:`cgdn.GDN`) into the GDN modules of a PyTorch model.

    The layers' parameters and reparameterization buffers replace those of the modules
    at the same paths (``{"g_a.1": layer, ...}`` as :func:`cgdn.from_compressai` and
    :func:`cgdn.load_layers` give them); the rest of the model's state is kept, and the
    whole state dict is loaded with ``model.load_state_dict(..., strict=strict)``, so the
    model ends up exactly as a strict load of a full checkpoint would leave it. Values
    are cast to each module's dtype and device.

    Parameters
    ----------
    model : torch.nn.Module
        A CompressAI model (accelerated or not) or any module holding GDN modules.
    layers : dict of str to cgdn.GDN, cgdn.GDN, or list of cgdn.GDN
        As :func:`cgdn.export_compressai` takes them.
    strict : bool, default True
        Passed to ``load_state_dict``.

    Returns
    -------
    list of str
        The module paths loaded.

    Raises
    ------
    ValueError
        If a layer has no GDN module at its path, the module differs from the layer in
        kind (GDN / IGDN / GDN1) or channel count; nothing is loaded then.

    Examples
    --------
    >>> import torch
    >>> import cgdn, cgdn.torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), cgdn.torch.GDN(4))
    >>> layers = cgdn.from_compressai(model)
    >>> layers["1"].beta_min
    1e-06
    >>> cgdn.torch.load_into(model, layers)
    ['1']
    """
    _check_module(model)
    from cgdn._interop import _layer_items, export_compressai

    items = _layer_items(layers)
    if items is None:
        raise TypeError(f"layers must be a cgdn.GDN or a dict or list of them, got "
                        f"{type(layers).__name__}")
    modules = dict(model.named_modules())
    for path, layer in items:
        module = modules.get(path)
        if module is None or not _is_compressai_gdn(module):
            near = [n for n, m in modules.items() if _is_compressai_gdn(m)]
            raise ValueError(f"the model has no GDN module at {path!r}; its GDN modules are "
                             f"{near[:8]}")
        simplified = is_gdn1(module)
        want = (bool(module.inverse), simplified, int(module.beta.shape[0]))
        got = (layer.inverse, (layer.alpha, layer.epsilon) == (1.0, 1.0), layer.channels)
        if want != got:
            raise ValueError(
                f"{path!r}: the model's module is {type(module).__name__}"
                f"({want[2]}, inverse={want[0]}, simplified={want[1]}), the layer "
                f"{layer!r}")
    state = model.state_dict()
    for key, value in export_compressai(dict(items), as_torch=True).items():
        state[key] = value.to(dtype=state[key].dtype, device=state[key].device)
    model.load_state_dict(state, strict=strict)
    return [path for path, _ in items]


def _compressai_layers():
    """``compressai.layers`` (CompressAI's GDN, GDN1 and reparameterization), or None
    where compressai is not installed; for the tests and benchmarks that compare with it.
    The package's ``__init__`` imports torchvision's compiled operators, for which no
    torchvision build exists beside the CPU build of torch 2.13, so the package is entered
    without running it (its ``layers`` and ``ops`` need only torch)."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("compressai")
    if spec is None:
        return None
    if "compressai" not in sys.modules:
        package = types.ModuleType("compressai")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["compressai"] = package
    import compressai.layers
    return compressai.layers
