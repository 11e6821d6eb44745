"""Population-batched functional training of one model per candidate loss.

The parameters of ``K`` copies of a model are stacked along a leading axis
(``torch.func.stack_module_state``) and run with ``vmap`` over
``functional_call``: one forward and one backward serve every candidate. The
candidate losses differ in structure, so each is applied to its own slice of the
stacked output; since the copies share no parameters, the gradient of the sum of
losses is each copy's own gradient. A candidate whose loss or gradient goes
non-finite is masked out and its parameters frozen, never touching the others.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call, stack_module_state, vmap

from evomal_sr.losses.standard import standard_loss_per_copy
from evomal_sr.losses.symbolic import CompiledLoss, output_to_fx, target_to_y

Params = dict[str, torch.Tensor]


class StackedModel:
    """``K`` copies of a model evaluated together as a functional program.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(3, 2)
    >>> stacked = StackedModel(net)
    >>> params = stacked.replicate(stacked.initial_params(), 4)
    >>> stacked(params, torch.randn(5, 3)).shape
    torch.Size([4, 5, 2])
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self._base = copy.deepcopy(model).to("meta")
        self._buffers = {k: v for k, v in model.named_buffers()}
        self._forward = vmap(self._call_one, in_dims=(0, None))
        self._forward_each = vmap(self._call_one, in_dims=(0, 0))

    def _call_one(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._base, (params, self._buffers), (x,))

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
        """Outputs ``[K, batch, outputs]`` of every copy on the same inputs ``x``."""
        return self._forward(params, x)

    def each(self, params: Params, xs: torch.Tensor) -> torch.Tensor:
        """Outputs ``[K, batch, outputs]`` of copy ``k`` on its own inputs ``xs[k]``."""
        return self._forward_each(params, xs)


def candidate_losses(losses: Sequence[CompiledLoss], weights: torch.Tensor, outputs: torch.Tensor,
                     target: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss of every candidate on its own slice of ``outputs`` ([K, batch, out]) -> [K]."""
    fx = output_to_fx(outputs, kind)  # softmax and one-hot once for all candidates
    y = target_to_y(target, outputs.shape[-1], kind, fx.dtype)
    return reduce_per_copy(torch.stack([loss(weights[k], y, fx[k]) for k, loss in enumerate(losses)]), kind)


def reduce_per_copy(values: torch.Tensor, kind: str) -> torch.Tensor:
    """Elementwise losses ``[K, batch, out]`` -> ``[K]``: sum over classes and mean over the
    batch (classification), or mean (regression); the batched form of ``reduce_loss``."""
    if kind == "classification":
        return values.sum(dim=-1).mean(dim=-1)
    return values.mean(dim=tuple(range(1, values.ndim)))


#: Cross-entropy or MSE of each copy's outputs [K, batch, out] -> [K]: the task's standard loss.
task_loss = standard_loss_per_copy


def task_metric(outputs: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Error rate (classification) or MSE (regression) per copy -> [K], non-finite as inf."""
    if kind == "classification":
        if outputs.shape[-1] == 1:
            predicted = (outputs.squeeze(-1) > 0).long()
        else:
            predicted = outputs.argmax(dim=-1)
        metric = (predicted != target.long().unsqueeze(0)).to(outputs.dtype).mean(dim=1)
        finite = torch.isfinite(outputs).all(dim=-1).all(dim=-1)
    else:
        metric = task_loss(outputs, target, kind)
        finite = torch.isfinite(metric)
    return torch.where(finite, metric, torch.full_like(metric, float("inf")))


def rows_finite(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Which leading-axis rows are finite in every tensor -> bool [K].

    A row's sum is finite only if every entry is (NaN and inf propagate), and a
    sum is an order of magnitude cheaper than an elementwise ``isfinite`` over
    (often non-contiguous) gradients; a non-finite sum, which an overflow could
    also cause, is confirmed entry by entry.
    """
    sums = [t.sum(dim=tuple(range(1, t.ndim))) if t.ndim > 1 else t for t in tensors]
    flags = torch.stack([torch.isfinite(s) for s in sums]).all(dim=0)
    if bool(flags.all()):
        return flags
    exact = [torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1) for t in tensors]
    return torch.stack(exact).all(dim=0)


def masked_sum(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over active rows; inactive rows contribute no gradient (not even NaN)."""
    index = active.nonzero().squeeze(-1)
    return values.index_select(0, index).sum()


@dataclass
class BatchSampler:
    """A seeded stream of minibatch indices, identical for every candidate.

    Examples
    --------
    >>> s = BatchSampler(n_rows=10, batch_size=4, seed=0)
    >>> s.next().shape
    torch.Size([4])
    """

    n_rows: int
    batch_size: int
    seed: int

    def __post_init__(self):
        self._generator = torch.Generator().manual_seed(self.seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0

    def next(self) -> torch.Tensor:
        size = min(self.batch_size, self.n_rows)
        if self._position + size > self._order.numel():
            self._order = torch.randperm(self.n_rows, generator=self._generator)
            self._position = 0
        batch = self._order[self._position:self._position + size]
        self._position += size
        return batch


@dataclass
class TrainingOutcome:
    """What :func:`train_population` returns."""

    params: Params
    diverged: torch.Tensor  # bool [K]: stopped at a non-finite loss or gradient
    steps_done: torch.Tensor  # long [K]


#: ``update(params, grads, active) -> params``: one optimiser step of every active copy.
Update = Callable[[Params, Sequence[torch.Tensor], torch.Tensor], Params]


def train_population(params: Params, copy_losses: Callable[[Params, int], torch.Tensor], update: Update, *,
                     steps: int, create_graph: bool = False, stop_when_done: bool = True,
                     on_losses: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                     after_step: Callable[[int, Params], None] | None = None) -> TrainingOutcome:
    """The one masked population training loop: ``steps`` guarded gradient steps of ``K`` copies.

    Every step computes ``copy_losses(params, step) -> [K]`` (``step`` counts from 1),
    drops the copies whose loss or gradient is non-finite (they keep the parameters
    they had; a dropped copy never contributes a gradient, not even a NaN), and
    applies ``update`` to the rest. With ``create_graph`` the steps stay
    differentiable (unrolled local search). ``on_losses(values, active)`` sees each
    step's losses; ``after_step(step, params)`` runs after each step, also once every
    copy has stopped when ``stop_when_done`` is false (curves keep their points).
    """
    first = next(iter(params.values()))
    K = first.shape[0]
    active = torch.ones(K, dtype=torch.bool, device=first.device)
    steps_done = torch.zeros(K, dtype=torch.long)
    for step in range(1, steps + 1):
        if active.any():
            values = copy_losses(params, step)
            active = active & torch.isfinite(values.detach())
            if on_losses is not None:
                on_losses(values.detach(), active)
            if active.any():
                grads = torch.autograd.grad(masked_sum(values, active), list(params.values()),
                                            create_graph=create_graph)
                active = active & rows_finite([g.detach() for g in grads])
                params = update(params, grads, active)
                steps_done += active.cpu()
        if stop_when_done and not active.any():
            break
        if after_step is not None:
            after_step(step, params)
    return TrainingOutcome(params, ~active.cpu(), steps_done)


def sgd_update(lr: float) -> Update:
    """In-place masked SGD (:func:`masked_sgd_step`) as an ``update`` for :func:`train_population`."""
    def update(params, grads, active):
        masked_sgd_step(params, grads, active, lr)
        return params
    return update


def train_candidates(stacked: StackedModel, params: Params, losses: Sequence[CompiledLoss],
                     weights: torch.Tensor, data, *, kind: str, steps: int, lr: float,
                     sampler: BatchSampler) -> TrainingOutcome:
    """Train every copy with SGD on its own (frozen) loss for ``steps`` minibatches.

    ``data`` is ``(X, y)`` on the model's device; every candidate sees the same
    minibatch sequence. A copy stops at its first non-finite loss or gradient and
    keeps the parameters it had. ``params`` itself is left unchanged.
    """
    X, Y = data
    weights = weights.detach()

    def copy_losses(theta, _step):
        index = sampler.next().to(X.device)
        return candidate_losses(losses, weights, stacked(theta, X[index]), Y[index], kind)

    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}  # never the caller's
    outcome = train_population(params, copy_losses, sgd_update(lr), steps=steps)
    return TrainingOutcome({k: v.detach() for k, v in outcome.params.items()}, outcome.diverged,
                           outcome.steps_done)


def masked_sgd_step(params: Params, grads: Sequence[torch.Tensor], active: torch.Tensor, lr: float) -> None:
    """One SGD step of every active copy, in place; inactive copies keep their parameters."""
    with torch.no_grad():
        if bool(active.all()):  # every gradient is finite: skip the masking (same arithmetic)
            for p, g in zip(params.values(), grads):
                p.sub_(g * lr)
            return
        dtype = next(iter(params.values())).dtype
        scale = active.to(dtype) * lr  # not (lr * active): that rounds lr to float32 first
        for p, g in zip(params.values(), grads):
            p.sub_(torch.nan_to_num(g) * scale.reshape(-1, *([1] * (g.ndim - 1))))


def evaluate_metric(stacked: StackedModel, params: Params, data, *, kind: str,
                    chunk: int = 4096) -> torch.Tensor:
    """Validation metric of every copy on all rows of ``data`` -> [K] (inf if non-finite)."""
    X, Y = data
    with torch.no_grad():
        outputs = torch.cat([stacked(params, X[i:i + chunk]) for i in range(0, X.shape[0], chunk)], dim=1)
        return task_metric(outputs, Y, kind)
