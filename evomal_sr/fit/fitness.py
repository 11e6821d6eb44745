"""The partial-training fitness: validation error after a short training run with each loss.

One function serves EvoMAL's evaluator, ML3 and TaylorGLO, so every method is
scored identically: the same initial parameters for every candidate (the
stacked model's own), the same seeded minibatch stream, SGD with the loss
frozen, then the validation metric (error rate or MSE; ``inf`` if non-finite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evomal_sr.core.seeding import derive_seed
from evomal_sr.fit.training import BatchSampler, StackedModel, evaluate_metric, train_candidates


@dataclass(frozen=True)
class FitnessSettings:
    """How long and how a candidate trains before it is scored."""

    steps: int
    lr: float
    batch_size: int
    seed: int

    @classmethod
    def from_preset(cls, preset, seed: int) -> FitnessSettings:
        return cls(steps=preset.train_steps, lr=preset.lr, batch_size=preset.batch_size, seed=seed)


def partial_training_fitness(stacked: StackedModel, losses: Sequence, weights: torch.Tensor, train_data, val_data,
                             *, kind: str, settings: FitnessSettings) -> tuple[list[float], list[bool]]:
    """Validation metric and divergence flag of each loss after ``settings.steps`` SGD steps.

    ``losses`` are compiled losses ``(weights, y, fx) -> elementwise`` and
    ``weights`` their padded weights ``[K, E]``; the copies start from
    ``stacked``'s initial parameters.

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
    device = train_data[0].device
    params = StackedModel.replicate({k: v.to(device) for k, v in stacked.initial_params().items()}, len(losses))
    sampler = BatchSampler(train_data[0].shape[0], settings.batch_size, derive_seed(settings.seed, "train"))
    outcome = train_candidates(stacked, params, losses, weights, train_data, kind=kind, steps=settings.steps,
                               lr=settings.lr, sampler=sampler)
    metric = evaluate_metric(stacked, outcome.params, val_data, kind=kind)
    return metric.cpu().tolist(), outcome.diverged.tolist()
