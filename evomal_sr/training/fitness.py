"""The partial-training fitness: validation error after a short training run with each loss.

One function serves EvoMAL's evaluator, ML3 and TaylorGLO, so every method is
scored identically: the same initial parameters for every candidate (the
stacked model's own), the same seeded minibatch stream, SGD with the loss
frozen, then the validation metric (error rate or MSE; ``inf`` if non-finite).

Two settings make the fitness judge a loss the way the fair meta-test does:

* ``lr_factors``: each candidate trains at every ``lr * factor`` (``K x G``
  stacked copies) and keeps its best. A loss cannot win by being larger, which
  is only a larger step size: the grid gives every loss its own best step size.
* ``eval_every``: the validation error is measured every that many steps and
  the fitness is its minimum along the run (early stopping), so a loss that
  learns fast and then memorises noisy labels is scored at its best, as a
  practitioner would stop it, and a loss still improving at the end is not
  scored below one that peaked early. ``0`` scores the last step (the paper's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evomal_sr.core.seeding import derive_seed
from evomal_sr.losses.program import LossProgram
from evomal_sr.training.loop import BatchSampler, evaluate_metric, train_candidates
from evomal_sr.training.stacked import StackedModel


@dataclass(frozen=True)
class FitnessSettings:
    """How long and how a candidate trains before it is scored."""

    steps: int
    lr: float
    batch_size: int
    seed: int
    lr_factors: tuple[float, ...] = (1.0,)
    eval_every: int = 0
    cuda_graph: bool = False  # replay the training step from a CUDA graph where possible (same results)

    @classmethod
    def from_preset(cls, preset, seed: int, *, cuda_graph: bool = False) -> FitnessSettings:
        return cls(
            steps=preset.train_steps,
            lr=preset.lr,
            batch_size=preset.batch_size,
            seed=seed,
            lr_factors=tuple(preset.fitness_lr_ratio**j for j in range(preset.fitness_lr_grid)),
            eval_every=preset.fitness_eval_every,
            cuda_graph=cuda_graph,
        )


def partial_training_fitness(
    stacked: StackedModel,
    losses: Sequence,
    weights: torch.Tensor,
    train_data,
    val_data,
    *,
    kind: str,
    settings: FitnessSettings,
    scales: torch.Tensor | None = None,
) -> tuple[list[float], list[bool]]:
    """Validation metric and divergence flag of each loss after ``settings.steps`` SGD steps.

    ``losses`` are compiled losses ``(weights, y, fx) -> elementwise`` and
    ``weights`` their padded weights ``[K, E]``; the copies start from
    ``stacked``'s initial parameters. ``scales`` ``[K]`` multiplies each loss
    (:mod:`evomal_sr.training.scaling`).

    Examples
    --------
    >>> import torch
    >>> from evomal_sr.grammar.expression import Expression
    >>> from evomal_sr.losses.symbolic import CompiledLoss
    >>> stacked = StackedModel(torch.nn.Linear(2, 1))
    >>> X, Y = torch.randn(20, 2), torch.randn(20)
    >>> loss = CompiledLoss(Expression.parse("square(fx - y)"))
    >>> fitness, diverged = partial_training_fitness(stacked, [loss], torch.ones(1, 3), (X, Y), (X, Y),
    ...     kind="regression", settings=FitnessSettings(steps=5, lr=0.1, batch_size=8, seed=0))
    >>> len(fitness), diverged
    (1, [False])
    """
    if settings.lr_factors != (1.0,) or settings.eval_every:
        return _grid_fitness(
            stacked, losses, weights, train_data, val_data, kind=kind, settings=settings, scales=scales
        )
    device = train_data[0].device
    params = StackedModel.replicate({k: v.to(device) for k, v in stacked.initial_params().items()}, len(losses))
    sampler = BatchSampler(train_data[0].shape[0], settings.batch_size, derive_seed(settings.seed, "train"))
    outcome = train_candidates(
        stacked,
        params,
        losses,
        weights,
        train_data,
        kind=kind,
        steps=settings.steps,
        lr=settings.lr,
        sampler=sampler,
        scales=scales,
        cuda_graph=settings.cuda_graph,
    )
    metric = evaluate_metric(stacked, outcome.params, val_data, kind=kind)
    return metric.cpu().tolist(), outcome.diverged.tolist()


def _grid_fitness(stacked, losses, weights, train_data, val_data, *, kind, settings, scales=None):
    """Every loss at every lr of the grid (``K x G`` copies), scored at its best (lr, evaluation step)."""
    X, G = train_data[0], len(settings.lr_factors)
    copies = losses.repeat_interleave(G) if isinstance(losses, LossProgram) else [c for c in losses for _ in range(G)]
    initial = {k: v.to(X.device) for k, v in stacked.initial_params().items()}
    params = StackedModel.replicate(initial, len(copies))
    lrs = torch.tensor(
        [settings.lr * f for _ in losses for f in settings.lr_factors],
        dtype=next(iter(initial.values())).dtype,
        device=X.device,
    )
    sampler = BatchSampler(X.shape[0], settings.batch_size, derive_seed(settings.seed, "train"))
    best = torch.full((len(copies),), float("inf"), dtype=torch.float64)

    def score(theta):
        metric = evaluate_metric(stacked, {k: v.detach() for k, v in theta.items()}, val_data, kind=kind)
        torch.minimum(best, metric.cpu().to(torch.float64), out=best)

    def after_step(step, theta):
        if settings.eval_every and step % settings.eval_every == 0 and step < settings.steps:
            score(theta)

    outcome = train_candidates(
        stacked,
        params,
        copies,
        weights.repeat_interleave(G, dim=0),
        train_data,
        kind=kind,
        steps=settings.steps,
        lr=lrs,
        sampler=sampler,
        after_step=after_step,
        scales=None if scales is None else scales.repeat_interleave(G),
        cuda_graph=settings.cuda_graph,
    )
    score(outcome.params)  # the last step always counts (a copy that stopped early keeps its parameters)
    per_loss = best.reshape(len(losses), G)
    chosen = per_loss.argmin(dim=1)
    diverged = outcome.diverged.reshape(len(losses), G).gather(1, chosen.unsqueeze(1)).squeeze(1)
    return per_loss.min(dim=1).values.tolist(), diverged.tolist()
