"""Many independent trainings of one model, run together on the stacked-model machinery.

A meta-test trains ``methods x learning rates x seeds`` copies of the task's
model. They differ in their loss, their learning rate and their minibatch
order, but not in their architecture, so one ``vmap``-ped forward and backward
serves all of them through the one training loop
(:func:`~evomal_sr.training.loop.train_population`). For a given seed, every
copy starts from the same initial parameters and sees the same minibatches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from evomal_sr.core.kinds import TASK_KINDS
from evomal_sr.core.seeding import derive_seed
from evomal_sr.errors import ConfigError
from evomal_sr.losses.base import ElementwiseLoss, LossModule, PopulationLoss
from evomal_sr.losses.frozen import FrozenLoss
from evomal_sr.losses.symbolic import LearnedLoss, output_to_fx, target_to_y
from evomal_sr.training.loop import BatchSampler, evaluate_outputs, reduce_per_copy, sgd_update, train_population
from evomal_sr.training.metrics import task_metric, task_metric_rows
from evomal_sr.training.online import OnlineLearnedLoss
from evomal_sr.training.stacked import Params, StackedModel

#: One loss's part of a training step: ``(outputs [G, batch, out], targets [G, batch], params, inputs, idx) -> [G]``
#: for the ``G`` copies at positions ``idx`` of the run (``params`` and ``inputs`` hold every copy).
GroupLoss = Callable[[torch.Tensor, torch.Tensor, Params, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CopySpec:
    """One training: which loss (an index into the loss list), which lr, which seed."""

    loss: int
    lr: float
    seed: int


@dataclass
class PopulationRun:
    """Per copy: the metric curve on the evaluation rows, the mean training loss per window, divergence;
    with ``rows=True``, each evaluation row's part of the metric at every point."""

    curve_steps: list[int]
    curves: list[list[float]]  # [copy][point]
    loss_curves: list[list[float]]  # [copy][point]
    diverged: list[bool]
    row_points: list[torch.Tensor] | None = None  # [point] of [copy, row]

    def rows_at(self, copy: int, step: int) -> list[float]:
        """Copy ``copy``'s error on each evaluation row at ``step`` (a curve step; needs ``rows=True``)."""
        if self.row_points is None:
            raise ConfigError("this run kept no per-row errors: train it with rows=True")
        return self.row_points[self.curve_steps.index(step)][copy].tolist()


def batched_loss(module: LossModule) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(outputs [K, batch, out], targets [K, batch]) -> [K]``: the loss of each copy on its own targets.

    Zoo and standard losses define ``per_copy``; symbolic and flat-parameter
    losses have a known elementwise form; any other module is called per copy
    and must return a scalar. The form is chosen once per method, not per step.
    """
    if isinstance(module, PopulationLoss):
        return module.per_copy
    if isinstance(module, LearnedLoss) and not module.weights.requires_grad:  # the meta-test's frozen copy
        return _fixed_learned_loss(module)
    if isinstance(module, ElementwiseLoss) and module.task in TASK_KINDS:
        kind = module.task

        def elementwise(outputs, targets):
            fx = output_to_fx(outputs, kind)
            y = target_to_y(targets.reshape(-1), outputs.shape[-1], kind, fx.dtype).reshape(fx.shape)
            return reduce_per_copy(module.elementwise(y, fx), kind)

        return elementwise

    def one_at_a_time(outputs, targets):
        values = []
        for k in range(outputs.shape[0]):
            value = module(outputs[k], targets[k])
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ConfigError(
                    f"the loss {type(module).__name__} must return a scalar tensor, "
                    f"got {getattr(value, 'shape', type(value).__name__)}"
                )
            values.append(value.reshape(()))
        return torch.stack(values)

    return one_at_a_time


def _fixed_learned_loss(module: LearnedLoss) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """:func:`batched_loss` of a learned loss whose weights do not train: its subtrees free of ``fx`` are
    computed once (:class:`~evomal_sr.losses.frozen.FrozenLoss`), the same bits as ``module.elementwise``."""
    kind = module.task
    frozen = FrozenLoss(module.compiled, module.weights, binary_targets=kind == "classification")

    def elementwise(outputs, targets):
        fx = output_to_fx(outputs, kind)
        y = target_to_y(targets.reshape(-1), outputs.shape[-1], kind, fx.dtype).reshape(fx.shape)
        if kind == "classification" and targets.is_floating_point():  # not integer labels: perhaps not 0/1
            return reduce_per_copy(module.elementwise(y, fx), kind)
        values = frozen(y, fx)
        return reduce_per_copy(values if module.scale == 1.0 else values * module.scale, kind)

    return elementwise


def train_copies(
    task,
    losses: Sequence[torch.nn.Module],
    copies: Sequence[CopySpec],
    train_data,
    eval_data,
    *,
    steps: int,
    every: int,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
    metric: str = "task",
    rows: bool = False,
) -> PopulationRun:
    """Train every copy with SGD for ``steps`` steps; the metric (:func:`~evomal_sr.training.metrics.task_metric`)
    on ``eval_data`` every ``every`` steps, and with ``rows=True`` each evaluation row's part of it too."""
    X, Y = train_data
    models = [task.make_model(seed=derive_seed(c.seed, "meta-test-init")) for c in copies]
    stacked = StackedModel(models[0])
    params = {k: v.to(X.device).requires_grad_(True) for k, v in StackedModel.stack(models).items()}
    samplers = [BatchSampler(X.shape[0], batch_size, derive_seed(c.seed, "meta-test-batches")) for c in copies]
    lrs = torch.tensor([c.lr for c in copies], dtype=next(iter(params.values())).dtype, device=X.device)
    indices = [
        torch.tensor([k for k, c in enumerate(copies) if c.loss == i], device=X.device) for i in range(len(losses))
    ]
    groups = [(_group_loss(module, stacked, lrs[idx]), idx) for module, idx in zip(losses, indices) if idx.numel()]
    inverse = torch.argsort(torch.cat([idx for _, idx in groups]))

    row_points: list[torch.Tensor] | None = [] if rows else None

    def evaluate(theta) -> torch.Tensor:
        """The metric per copy; the per-row errors too, from the same outputs, when they are kept."""
        outputs = evaluate_outputs(stacked, theta, eval_data[0])
        if row_points is not None:
            row_points.append(task_metric_rows(outputs, eval_data[1], task.kind, metric).cpu())
        return task_metric(outputs, eval_data[1], task.kind, metric)

    recorder = _Recorder(len(copies), evaluate(params))

    def losses_of(theta, _step):
        index = torch.stack([s.next() for s in samplers]).to(X.device)
        inputs = X[index]
        outputs, targets = stacked.each(theta, inputs), Y[index]
        return torch.cat([loss(outputs[idx], targets[idx], theta, inputs, idx) for loss, idx in groups])[inverse]

    def after_step(step, theta):
        if step % every == 0 or step == steps:
            recorder.point(step, evaluate(theta))
        if progress is not None:
            progress(1)

    outcome = train_population(
        params,
        losses_of,
        sgd_update(lrs),
        steps=steps,
        stop_when_done=False,
        on_losses=recorder.add_losses,
        after_step=after_step,
    )
    return PopulationRun(
        recorder.steps,
        recorder.by_copy(recorder.metric),
        recorder.by_copy(recorder.loss),
        outcome.diverged.tolist(),
        row_points,
    )


def _group_loss(module: torch.nn.Module, stacked: StackedModel, lrs: torch.Tensor) -> GroupLoss:
    """``module``'s loss for the copies of one run that train with it (at ``lrs``): an online learned loss
    (:class:`~evomal_sr.training.online.OnlineLearnedLoss`) adapts its weights from their parameters and
    inputs at every step; any other loss sees only their outputs and targets (:func:`batched_loss`)."""
    if isinstance(module, OnlineLearnedLoss):
        run = module.start(stacked, lrs)

        def online(outputs, targets, params, inputs, idx):
            return run(outputs, targets, {k: v.detach()[idx] for k, v in params.items()}, inputs[idx])

        return online
    loss = batched_loss(module)
    return lambda outputs, targets, _params, _inputs, _idx: loss(outputs, targets)


class _Recorder:
    """The metric per copy at a few steps, and the mean training loss over each window."""

    def __init__(self, n_copies: int, initial: torch.Tensor):
        self.steps = [0]
        self.metric = [initial.cpu().tolist()]
        self.loss: list[list[float]] = []
        self._sum = torch.zeros(n_copies, dtype=torch.float64)
        self._count = torch.zeros(n_copies, dtype=torch.float64)
        self._first: list[float] | None = None

    def add_losses(self, values: torch.Tensor, active: torch.Tensor) -> None:
        values = values.detach().cpu().to(torch.float64)
        active = active.cpu()
        if self._first is None:
            self._first = values.tolist()
        self._sum += torch.where(active, values, torch.zeros_like(values))
        self._count += active.to(torch.float64)

    def point(self, step: int, metric: torch.Tensor) -> None:
        self.steps.append(step)
        self.metric.append(metric.cpu().tolist())
        nan = torch.full_like(self._sum, float("nan"))
        mean = torch.where(self._count > 0, self._sum / self._count.clamp(min=1), nan)
        self.loss.append(mean.tolist())
        self._sum.zero_()
        self._count.zero_()

    def by_copy(self, points: list[list[float]]) -> list[list[float]]:
        if points is self.loss:
            first = self._first if self._first is not None else [float("nan")] * len(self.metric[0])
            points = [first, *self.loss]
        return [list(col) for col in zip(*points)]
