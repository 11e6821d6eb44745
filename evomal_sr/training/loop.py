"""The one masked population training loop, and the training of the search's candidates with it.

:func:`train_population` takes guarded gradient steps of ``K`` copies of a model
whose parameters are stacked along a leading axis (run by
:class:`~evomal_sr.training.stacked.StackedModel`): since the copies share no
parameters, the gradient of the sum of their losses is each copy's own
gradient, and a copy whose loss or gradient goes non-finite is masked out with
its parameters frozen, never touching the others. The search's candidates
differ in structure; :class:`CandidateLosses` applies each to its own slice of
the stacked output (the population-loss contract of
:class:`~evomal_sr.losses.base.PopulationLoss`), and :func:`train_candidates`
trains them with SGD on one shared minibatch sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from evomal_sr.losses.base import same_targets
from evomal_sr.losses.frozen import FrozenLoss
from evomal_sr.losses.program import LossProgram
from evomal_sr.losses.symbolic import CompiledLoss, output_to_fx, target_to_y
from evomal_sr.training.captured import can_capture, train_captured
from evomal_sr.training.metrics import task_metric
from evomal_sr.training.stacked import Params, StackedModel


@dataclass(frozen=True)
class CandidateLosses:
    """The search's candidates as one :class:`~evomal_sr.losses.base.PopulationLoss`: copy ``k`` uses ``losses[k]``.

    Candidate ``k`` is the compiled tree ``losses[k]`` with the edge weights
    ``weights[k]`` (a padded ``[K, E_max]`` tensor, differentiable when it requires
    grad), times ``scales[k]`` when ``scales`` ``[K]`` is given (see
    :mod:`evomal_sr.training.scaling`).

    Examples
    --------
    >>> import torch
    >>> from evomal_sr.grammar.expression import Expression
    >>> from evomal_sr.losses.base import same_targets
    >>> from evomal_sr.losses.symbolic import CompiledLoss
    >>> losses = [CompiledLoss(Expression.parse(t)) for t in ("-(y * log(fx))", "square(fx - y)")]
    >>> population = CandidateLosses(losses, torch.ones(2, 6), "classification")
    >>> outputs, labels = torch.randn(2, 5, 3), torch.tensor([0, 1, 2, 0, 1])
    >>> population.per_copy(outputs, same_targets(labels, 2)).shape
    torch.Size([2])
    """

    losses: Sequence[CompiledLoss]
    weights: torch.Tensor
    kind: str
    scales: torch.Tensor | None = None
    #: the weights never change: each candidate's subtrees free of ``fx`` are computed once
    #: (:class:`~evomal_sr.losses.frozen.FrozenLoss`; the same bits)
    fixed_weights: bool = False
    #: every target entry is 0 or 1 (one-hot or binary labels): with ``fixed_weights``, subtrees of ``y`` too
    binary_targets: bool = False
    frozen_losses: tuple[FrozenLoss, ...] = field(init=False, default=(), repr=False, compare=False)

    def __post_init__(self):
        # a LossProgram (the population interpreter) or a stand-in for a compiled tree is left as it is
        losses = self.losses
        if self.fixed_weights and not isinstance(losses, LossProgram) and all(type(x) is CompiledLoss for x in losses):
            rows = self.weights.detach().unbind(0)
            frozen = tuple(
                FrozenLoss(loss, rows[k], binary_targets=self.binary_targets) for k, loss in enumerate(losses)
            )
            object.__setattr__(self, "frozen_losses", frozen)

    def per_copy(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of every candidate on its own slice of ``outputs`` ``[K, batch, out]`` -> ``[K]``.

        ``targets`` has the copies' axis in front; shared rows
        (:func:`~evomal_sr.losses.base.same_targets`) are converted to ``y`` once.
        """
        kind, losses, weights = self.kind, self.losses, self.weights
        fx = output_to_fx(outputs, kind)  # softmax once for all candidates
        if targets.shape[0] == 1 or targets.stride(0) == 0:  # one-hot once, shared by every candidate
            ys = [target_to_y(targets[0], outputs.shape[-1], kind, fx.dtype)] * len(losses)
        else:
            ys = [target_to_y(t, outputs.shape[-1], kind, fx.dtype) for t in targets.unbind(0)]
        if isinstance(losses, LossProgram):  # the population interpreter: every candidate in one program
            shared = len(ys) == 1 or ys[1] is ys[0]
            values = reduce_per_copy(losses(weights, ys[0] if shared else torch.stack(ys), fx), kind)
        elif self.frozen_losses:
            is_one = ys[0] == 1 if self.binary_targets and (len(ys) == 1 or ys[1] is ys[0]) else None
            if len(losses) == 1:
                values = reduce_per_copy(self.frozen_losses[0](ys[0], fx.squeeze(0), is_one).unsqueeze(0), kind)
            else:
                slices = fx.unbind(0)
                values = reduce_per_copy(
                    torch.stack([loss(ys[k], slices[k], is_one) for k, loss in enumerate(self.frozen_losses)]), kind
                )
        elif len(losses) == 1:  # the one-at-a-time path: no stacking; squeeze, not [0], whose backward copies
            values = reduce_per_copy(losses[0](weights.squeeze(0), ys[0], fx.squeeze(0)).unsqueeze(0), kind)
        else:
            rows, slices = weights.unbind(0), fx.unbind(0)  # one call each instead of one per candidate
            values = reduce_per_copy(
                torch.stack([loss(rows[k], ys[k], slices[k]) for k, loss in enumerate(losses)]), kind
            )
        return values if self.scales is None else values * self.scales


def binary_targets(y: torch.Tensor, kind: str) -> bool:
    """Whether every entry of the targets ``y`` (as a loss sees them) is 0 or 1: one-hot or binary labels."""
    return kind == "classification" and bool(((y == 0) | (y == 1)).all())


def reduce_per_copy(values: torch.Tensor, kind: str) -> torch.Tensor:
    """Elementwise losses ``[K, batch, out]`` -> ``[K]``: sum over classes and mean over the
    batch (classification), or mean (regression); the batched form of ``reduce_loss``."""
    if kind == "classification":
        return values.sum(dim=-1).mean(dim=-1)
    return values.mean(dim=tuple(range(1, values.ndim)))


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
    return rows_finite_exact(tensors)


def rows_finite_exact(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Which leading-axis rows are finite in every tensor -> bool [K], entry by entry (reads nothing back)."""
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
        batch = self._order[self._position : self._position + size]
        self._position += size
        return batch


@dataclass
class TrainingOutcome:
    """What :func:`train_population` returns."""

    params: Params
    diverged: torch.Tensor  # bool [K]: stopped at a non-finite loss or gradient
    steps_done: torch.Tensor  # long [K]


#: ``update(params, grads, active) -> params``: one optimiser step of every active copy;
#: ``active`` is ``None`` while every copy is active (known without reading the device).
Update = Callable[[Params, Sequence[torch.Tensor], torch.Tensor | None], Params]


def train_population(
    params: Params,
    copy_losses: Callable[[Params, int], torch.Tensor],
    update: Update,
    *,
    steps: int,
    create_graph: bool = False,
    stop_when_done: bool = True,
    on_losses: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    after_step: Callable[[int, Params], None] | None = None,
) -> TrainingOutcome:
    """The one masked population training loop: ``steps`` guarded gradient steps of ``K`` copies.

    Every step computes ``copy_losses(params, step) -> [K]`` (``step`` counts from 1),
    drops the copies whose loss or gradient is non-finite (they keep the parameters
    they had; a dropped copy never contributes a gradient, not even a NaN), and
    applies ``update`` to the rest. With ``create_graph`` the steps stay
    differentiable (unrolled local search). ``on_losses(values, active)`` sees each
    step's losses; ``after_step(step, params)`` runs after each step, also once every
    copy has stopped when ``stop_when_done`` is false (curves keep their points).

    While every copy is still active (the usual case) a step reads two flags from
    the device, one for the losses and one for the gradients, and needs no mask:
    the sum of all losses has the same value and gradient as the masked sum. Only
    after a copy stops does a step pay for masking (:func:`masked_sum`, :func:`rows_finite`).
    """
    first = next(iter(params.values()))
    K = first.shape[0]
    active = torch.ones(K, dtype=torch.bool, device=first.device)
    masked_steps = torch.zeros(K, dtype=torch.long, device=first.device)  # steps done once a copy stopped
    clean_steps = 0  # steps done while every copy was active
    all_active = any_active = True
    for step in range(1, steps + 1):
        if any_active:
            values = copy_losses(params, step)
            detached = values.detach()
            if not (all_active and bool(torch.isfinite(detached).all())):
                active, all_active = active & torch.isfinite(detached), False
            if on_losses is not None:
                on_losses(detached, active)
            if all_active or bool(active.any()):
                total = values.sum() if all_active else masked_sum(values, active)
                grads = torch.autograd.grad(total, list(params.values()), create_graph=create_graph)
                if not (all_active and _all_finite(grads)):
                    active = active & rows_finite([g.detach() for g in grads])
                    all_active = all_active and bool(active.all())
                params = update(params, grads, None if all_active else active)
                if all_active:
                    clean_steps += 1
                else:
                    masked_steps += active
            any_active = all_active or bool(active.any())
        if stop_when_done and not any_active:
            break
        if after_step is not None:
            after_step(step, params)
    return TrainingOutcome(params, ~active.cpu(), (masked_steps + clean_steps).cpu())


def _all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite, read from one scalar (one host sync).

    A finite total means every entry is finite (NaN and inf propagate); a
    non-finite one may be an overflow, which :func:`rows_finite` then sorts out.
    """
    with torch.no_grad():
        return bool(torch.isfinite(torch.stack([t.sum() for t in tensors]).sum()))


def sgd_update(lr: float | torch.Tensor) -> Update:
    """In-place masked SGD (:func:`masked_sgd_step`) as an ``update`` for :func:`train_population`.

    ``lr`` is one learning rate for every copy, or a tensor ``[K]`` with one per copy.
    """

    def update(params, grads, active):
        masked_sgd_step(params, grads, active, lr)
        return params

    return update


def train_candidates(
    stacked: StackedModel,
    params: Params,
    losses: Sequence[CompiledLoss],
    weights: torch.Tensor,
    data,
    *,
    kind: str,
    steps: int,
    lr: float | torch.Tensor,
    sampler: BatchSampler,
    cuda_graph: bool = False,
    scales: torch.Tensor | None = None,
    after_step: Callable[[int, Params], None] | None = None,
) -> TrainingOutcome:
    """Train every copy with SGD on its own (frozen) loss for ``steps`` minibatches.

    ``data`` is ``(X, y)`` on the model's device; every candidate sees the same
    minibatch sequence. A copy stops at its first non-finite loss or gradient and
    keeps the parameters it had. ``params`` itself is left unchanged. ``lr`` is
    one learning rate or one per copy (``[K]``); ``scales`` (``[K]``, frozen)
    multiplies each copy's loss; ``after_step(step, params)`` is
    called after every step (see :func:`train_population`). With
    ``cuda_graph`` the step is captured once and replayed
    (:mod:`evomal_sr.training.captured`) where that is possible (CUDA, a model without
    buffers or random modules); elsewhere the eager loop runs.
    """
    X, Y = data
    made: dict = {}  # Y as the losses see it (one-hot labels) and the population, made once, not per step

    def values_at(theta, index):
        outputs = stacked(theta, X[index])
        if not made:
            made["y"] = y = target_to_y(Y, outputs.shape[-1], kind, outputs.dtype)
            made["losses"] = CandidateLosses(
                losses,
                weights.detach(),
                kind,
                None if scales is None else scales.detach(),
                fixed_weights=True,
                binary_targets=binary_targets(y, kind),
            )
        return made["losses"].per_copy(outputs, same_targets(made["y"][index], len(losses)))

    if cuda_graph and can_capture(stacked, X.device):
        theta, diverged, done = train_captured(
            params, values_at, lambda: sampler.next().to(X.device), steps=steps, lr=lr, after_step=after_step
        )
        return TrainingOutcome({k: v.detach() for k, v in theta.items()}, diverged.cpu(), done.cpu())

    def copy_losses(theta, _step):
        return values_at(theta, sampler.next().to(X.device))

    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}  # never the caller's
    outcome = train_population(params, copy_losses, sgd_update(lr), steps=steps, after_step=after_step)
    return TrainingOutcome({k: v.detach() for k, v in outcome.params.items()}, outcome.diverged, outcome.steps_done)


def masked_sgd_step(
    params: Params, grads: Sequence[torch.Tensor], active: torch.Tensor | None, lr: float | torch.Tensor
) -> None:
    """One SGD step of every active copy, in place; inactive copies keep their parameters.

    ``active`` is bool ``[K]``, or ``None`` for every copy; ``lr`` is a number (every
    copy) or a tensor ``[K]`` (one learning rate per copy).
    """
    with torch.no_grad():
        if active is None or bool(active.all()):  # every gradient is finite: no masking (same arithmetic)
            if not isinstance(lr, torch.Tensor):  # the same two kernels per tensor as p.sub_(g * lr), one call each
                torch._foreach_sub_(list(params.values()), torch._foreach_mul(list(grads), lr))
                return
            for p, g in zip(params.values(), grads):
                p.sub_(g * lr.reshape(-1, *([1] * (g.ndim - 1))))
            return
        dtype = next(iter(params.values())).dtype
        scale = active.to(dtype) * lr  # not (lr * active): that rounds lr to float32 first
        for p, g in zip(params.values(), grads):
            p.sub_(torch.nan_to_num(g) * scale.reshape(-1, *([1] * (g.ndim - 1))))


def evaluate_outputs(stacked: StackedModel, params: Params, X: torch.Tensor, *, chunk: int = 4096) -> torch.Tensor:
    """Every copy's outputs on all rows of ``X`` -> ``[K, rows, out]``, without gradients.

    The copies run in eval mode (:meth:`StackedModel.evaluate`): BatchNorm uses each
    copy's running statistics, dropout is off.
    """
    with torch.no_grad():
        return torch.cat([stacked.evaluate(params, X[i : i + chunk]) for i in range(0, X.shape[0], chunk)], dim=1)


def evaluate_metric(
    stacked: StackedModel, params: Params, data, *, kind: str, chunk: int = 4096, metric: str = "task"
) -> torch.Tensor:
    """Validation metric (:func:`~evomal_sr.training.metrics.task_metric`) of every copy on all rows of ``data``
    -> [K] (inf if non-finite), the copies in eval mode (:func:`evaluate_outputs`)."""
    X, Y = data
    return task_metric(evaluate_outputs(stacked, params, X, chunk=chunk), Y, kind, metric)
