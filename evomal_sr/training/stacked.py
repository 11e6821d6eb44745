"""``K`` copies of any ``nn.Module`` run as one functional program.

The parameters of the copies are stacked along a leading axis and the model is
run with ``vmap`` over ``functional_call``: one forward and one backward serve
every copy. :class:`StackedModel` also handles what makes a model stateful or
random:

* **Buffers** (BatchNorm running statistics, ``num_batches_tracked``, any other
  registered buffer) are stacked per copy as well. A training-mode forward
  (:meth:`StackedModel.__call__`, :meth:`StackedModel.each`) uses batch
  statistics and updates the copy's own running statistics in place; an
  eval-mode forward (:meth:`StackedModel.evaluate`, used for validation and test)
  uses them and changes nothing. This is the usual PyTorch ``train()`` /
  ``eval()`` semantics per copy; ``torch.func.replace_all_batch_norm_modules_``
  is *not* used (it drops running statistics, so eval mode would differ).
* **Randomness** (``nn.Dropout`` and friends) uses
  ``vmap(..., randomness="different")``: each copy draws its own mask. The
  ``n``-th training forward of a run draws from the global generators seeded
  with ``derive_seed(seed, "dropout", n)`` inside ``torch.random.fork_rng``
  (:meth:`StackedModel.forward_seed`), so a run is reproducible and the caller's
  random state is left unchanged. With ``K == 1`` the masks equal those of a
  plain ``model.train()`` forward after ``torch.manual_seed(forward_seed(n))``.
* **A run** is identified by the storage of its (stacked) parameters: in-place
  SGD keeps it, ``detach()`` shares it, so the state trained by
  ``train_population`` is the one :meth:`~StackedModel.evaluate` finds. New
  leaf parameters (``replicate`` / ``stack`` / ``clone``) start a new run from
  the model's initial buffers; non-leaf parameters (the steps of an unrolled,
  differentiable local search) continue the latest run.
* **Plain MLPs** (a ``Linear`` or a ``Sequential`` of ``Linear`` layers and
  elementwise activations, no buffers) skip ``vmap``: their forward is written
  out as the batched matrix products ``vmap`` itself lowers ``linear`` to, so the
  outputs and gradients (also with ``create_graph``) are bit-identical, without
  ``vmap``'s and ``functional_call``'s per-call Python cost, a large share of a
  one-copy training step of a small MLP on CPU (``benchmarks/PERFORMANCE.md``
  has the figures). Second derivatives (the
  local search's) are sums over several paths, which autograd adds in the order
  its engine reaches them; that order depends on the graph's no-op view nodes,
  so it can differ from the ``vmap`` path's in the last bits
  (``tests/test_stacked_kernel.py`` says where).
* **Fallback.** When ``vmap`` cannot run the model (data-dependent control flow,
  ``.item()``, unsupported operators), the copies are run one at a time with
  the same semantics; the choice is made automatically on the first call (or by
  :meth:`StackedModel.probe`) and reported by :meth:`StackedModel.describe`.

Models without buffers or random modules keep no run state (the computation is unchanged).
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from evomal_sr.core.seeding import derive_seed
from evomal_sr.training.precision import check_channels_last, check_precision, model_autocast, to_channels_last

Params = dict[str, torch.Tensor]

#: Module types whose training-mode forward draws random numbers.
RANDOM_MODULES = (nn.modules.dropout._DropoutNd, nn.RReLU)
#: Parameter-free elementwise modules a plain MLP may contain (see :func:`_mlp_layers`).
ELEMENTWISE_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus, nn.Identity)
#: Errors that mean "vmap cannot run this model" (then the copies run one at a time).
VMAP_ERRORS = (RuntimeError, NotImplementedError, ValueError, TypeError)


@dataclass
class _RunState:
    """Per-copy buffers ``[K, ...]`` of one run and how many training forwards it has had."""

    buffers: dict[str, torch.Tensor]
    forwards: int = 0


class StackedModel:
    """``K`` copies of a model evaluated together as a functional program.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose parameters (and buffers) initialise the copies.
    seed : int
        Seeds the dropout masks (see :meth:`forward_seed`).
    precision : {"fp32", "tf32", "bf16"}
        ``"bf16"`` runs each forward under bf16 autocast and returns fp32 outputs; the others
        leave the forward as it is (TF32 is switched on around a whole batch by the scorer,
        :func:`~evomal_sr.training.precision.matmul_precision`).
    channels_last : bool
        Store 4-D image inputs as NHWC (:func:`~evomal_sr.training.precision.to_channels_last`).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.2))
    >>> stacked = StackedModel(net)
    >>> params = stacked.replicate(stacked.initial_params(), 4)
    >>> stacked(params, torch.randn(5, 3)).shape
    torch.Size([4, 5, 4])
    >>> stacked.evaluate(params, torch.randn(5, 3)).shape
    torch.Size([4, 5, 4])
    >>> stacked.describe()["execution"]
    'batched'
    """

    def __init__(self, model: torch.nn.Module, *, seed: int = 0, precision: str = "fp32", channels_last: bool = False):
        self.model = model
        self.seed = int(seed)
        self.precision = check_precision(precision)  # TF32 is the scorer's, around a whole batch
        self.channels_last = check_channels_last(channels_last)
        self._base = copy.deepcopy(model).to("meta").train()
        self._eval_base = copy.deepcopy(model).to("meta").eval()
        self._initial_buffers = {k: v.detach() for k, v in model.named_buffers()}
        self.random = any(isinstance(m, RANDOM_MODULES) for m in model.modules())
        self.stateful = bool(self._initial_buffers) or self.random
        self.batched = True
        self.fallback_reason: str | None = None
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._latest: _RunState | None = None
        self._checked: set = set()
        self._no_state = _RunState({})
        self._mlp = None if self.stateful else _mlp_layers(model)
        randomness = "different" if self.random else "error"
        self._vmapped = {
            (base_name, each): vmap(
                self._call_with(base_name), in_dims=(0, 0, 0 if each else None), randomness=randomness
            )
            for base_name in ("train", "eval")
            for each in (False, True)
        }

    def _call_with(self, mode: str):
        base = self._base if mode == "train" else self._eval_base

        def call(params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (params, buffers), (x,))

        return call

    def initial_params(self) -> Params:
        """The wrapped model's parameters, detached."""
        return {k: v.detach() for k, v in self.model.named_parameters()}

    @staticmethod
    def replicate(params: Params, copies: int) -> Params:
        """Stack ``copies`` identical copies of ``params`` (a fresh leaf per tensor)."""
        return {k: v.unsqueeze(0).expand(copies, *v.shape).clone() for k, v in params.items()}

    @staticmethod
    def stack(models: Sequence[torch.nn.Module]) -> Params:
        """Stack the parameters of distinct models (``torch.func.stack_module_state``)."""
        params, _ = stack_module_state(list(models))
        return {k: v.detach() for k, v in params.items()}

    def __call__(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Training-mode outputs ``[K, batch, outputs]`` of every copy on the same inputs ``x``."""
        return self._run(params, x, mode="train", each=False)

    def each(self, params: Params, xs: torch.Tensor) -> torch.Tensor:
        """Training-mode outputs ``[K, batch, outputs]`` of copy ``k`` on its own inputs ``xs[k]``."""
        return self._run(params, xs, mode="train", each=True)

    def evaluate(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode outputs ``[K, batch, outputs]``: running statistics, no dropout, no update."""
        return self._run(params, x, mode="eval", each=False)

    def buffers(self, params: Params) -> Params:
        """The per-copy buffers ``[K, ...]`` of the run ``params`` belong to (e.g. running means)."""
        return dict(self._state(params, train=False).buffers) if self.stateful else {}

    def forward_seed(self, n: int) -> int:
        """Seed of the global generators for a run's ``n``-th training forward (from 1)."""
        return derive_seed(self.seed, "dropout", int(n))

    def describe(self) -> dict:
        """How the copies are run: ``execution`` is ``"batched"`` or ``"one-at-a-time"``.

        Examples
        --------
        >>> StackedModel(torch.nn.Linear(2, 1)).describe()
        {'execution': 'batched', 'buffers': 0, 'random': False, 'fallback_reason': None}
        """
        return {
            "execution": "batched" if self.batched else "one-at-a-time",
            "buffers": len(self._initial_buffers),
            "random": self.random,
            "fallback_reason": self.fallback_reason,
        }

    def probe(self, x: torch.Tensor) -> dict:
        """Run two copies on ``x`` (train with a backward, then eval) to settle batched vs fallback.

        Returns :meth:`describe`. The probe's running statistics are discarded.
        """
        params = {k: v.requires_grad_(True) for k, v in self.replicate(self.initial_params(), 2).items()}
        latest = self._latest
        out = self._run(params, x, mode="train", each=False)
        if params:
            torch.autograd.grad(out.sum(), list(params.values()), allow_unused=True)
        with torch.no_grad():
            self._run(params, x, mode="eval", each=False)
        self._latest = latest
        return self.describe()

    # -- stateful path ---------------------------------------------------------------
    def _run(self, params: Params, x: torch.Tensor, *, mode: str, each: bool) -> torch.Tensor:
        if self.channels_last:
            x = to_channels_last(x)
        if self.precision != "bf16":
            return self._run_state(params, x, mode=mode, each=each)
        with model_autocast(self.precision, x.device):
            out = self._run_state(params, x, mode=mode, each=each)
        return out.float()  # the loss tree, its derivatives and the optimiser stay in fp32

    def _run_state(self, params: Params, x: torch.Tensor, *, mode: str, each: bool) -> torch.Tensor:
        if not self.stateful:
            return self._dispatch(params, self._no_state, x, mode, each, seed=None)
        state = self._state(params, train=mode == "train")
        if mode == "train" and self.random:
            state.forwards += 1
            with _seeded(self.forward_seed(state.forwards), x.device):
                return self._dispatch(params, state, x, mode, each, seed=self.forward_seed(state.forwards))
        return self._dispatch(params, state, x, mode, each, seed=None)

    def _dispatch(self, params, state: _RunState, x, mode: str, each: bool, seed) -> torch.Tensor:
        if self._mlp is not None:
            return _mlp_forward(self._mlp, params, x)
        if not self.batched:
            return self._loop(params, state.buffers, x, mode, each)
        if (mode, each) in self._checked:
            return self._vmapped[(mode, each)](params, state.buffers, x)
        saved = {k: v.clone() for k, v in state.buffers.items()}
        try:
            out = self._vmapped[(mode, each)](params, state.buffers, x)
        except VMAP_ERRORS as exc:
            for k, v in saved.items():
                state.buffers[k].copy_(v)
            if seed is not None:
                torch.manual_seed(seed)
            try:
                out = self._loop(params, state.buffers, x, mode, each)
            except Exception:
                raise exc from None
            self.batched = False
            self.fallback_reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return out
        self._checked.add((mode, each))
        return out

    def _loop(self, params: Params, buffers: Params, x: torch.Tensor, mode: str, each: bool) -> torch.Tensor:
        """The copies one at a time; buffer views are updated in place like the batched path."""
        base = self._base if mode == "train" else self._eval_base
        K = _copies(params, buffers)
        outputs = []
        for k in range(K):
            p = {n: v[k] for n, v in params.items()}
            b = {n: v[k] for n, v in buffers.items()}
            outputs.append(functional_call(base, (p, b), (x[k] if each else x,)))
        return torch.stack(outputs)

    def _state(self, params: Params, *, train: bool) -> _RunState:
        """The run ``params`` belong to (see the module notes); a new one from the initial buffers."""
        first = next(iter(params.values()), None)
        key = first.untyped_storage() if first is not None else None
        state = self._states.get(key) if key is not None else None
        if state is not None and first is not None and _copies(params, state.buffers) == first.shape[0]:
            return state
        latest = self._latest
        if (
            first is not None
            and first.grad_fn is not None
            and latest is not None
            and _copies(params, latest.buffers) == first.shape[0]
        ):
            state = latest  # a step of an unrolled, differentiable run: continue it
        else:
            K = first.shape[0] if first is not None else 1
            device = first.device if first is not None else None
            state = _RunState(
                {k: v.to(device).unsqueeze(0).expand(K, *v.shape).clone() for k, v in self._initial_buffers.items()}
            )
        if key is not None:
            self._states[key] = state
        if train:
            self._latest = state
        return state


def _mlp_layers(model: nn.Module) -> list | None:
    """``[(weight name, bias name or None) | activation module, ...]`` of a plain MLP, else ``None``."""
    modules = list(model) if isinstance(model, nn.Sequential) else [model]
    layers: list = []
    for index, module in enumerate(modules):
        prefix = f"{index}." if isinstance(model, nn.Sequential) else ""
        if type(module) is nn.Linear:
            layers.append((prefix + "weight", prefix + "bias" if module.bias is not None else None))
        elif type(module) in ELEMENTWISE_MODULES:
            layers.append(module)
        else:
            return None
    return layers


def _mlp_forward(layers: list, params: Params, x: torch.Tensor) -> torch.Tensor:
    """``[K, batch, out]`` of a plain MLP: ``x`` is shared ``[batch, in]`` or per copy ``[K, batch, in]``.

    The same kernels as ``vmap(functional_call)`` (a batched matrix product, then
    the bias added), hence the same outputs and gradients. ``torch.bmm`` is called
    directly: it is what ``matmul`` lowers to here, without ``matmul``'s expand
    and reshape views, which cost autograd five no-op nodes per layer in every
    backward (measured in ``benchmarks/PERFORMANCE.md``).
    """
    h = x
    for layer in layers:
        if isinstance(layer, tuple):
            weight, bias = layer
            w = params[weight]
            h = torch.bmm(h if h.ndim == 3 else h.expand(w.shape[0], *h.shape), w.transpose(1, 2))
            if bias is not None:
                h = h + params[bias].unsqueeze(1)
        else:
            h = layer(h)
    return h


def _copies(params: Params, buffers: Params) -> int:
    """The number of copies ``K`` of the buffers (or of the parameters when there are none)."""
    for v in buffers.values():
        return v.shape[0]
    for v in params.values():
        return v.shape[0]
    return 1


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed the generator ``device`` draws from (and the CPU's) within ``fork_rng``."""
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
