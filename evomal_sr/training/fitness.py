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


def fitness_inits(stacked: StackedModel, make_model, seed: int, count: int, device) -> list[dict]:
    """``count`` initialisations to score from: ``stacked``'s own, then ``make_model(seed=...)``'s, seeded.

    One (the default) is ``stacked``'s alone, as before ``fitness_seeds`` existed.

    Examples
    --------
    >>> import torch
    >>> stacked = StackedModel(torch.nn.Linear(2, 1))
    >>> inits = fitness_inits(stacked, lambda seed: torch.nn.Linear(2, 1), seed=0, count=3, device="cpu")
    >>> len(inits), inits[0]["weight"] is not None
    (3, True)
    """
    own = stacked.initial_params()
    extra = [make_model(seed=derive_seed(seed, "fitness-init", j)) for j in range(1, count)]
    return [own] + [{k: v.detach().to(device) for k, v in m.named_parameters()} for m in extra]


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
    inits: Sequence[dict] = (),
) -> tuple[list[float], list[bool]]:
    """Validation metric and divergence flag of each loss after ``settings.steps`` SGD steps.

    ``losses`` are compiled losses ``(weights, y, fx) -> elementwise`` and
    ``weights`` their padded weights ``[K, E]``; the copies start from
    ``stacked``'s initial parameters, or from each of ``inits`` (parameter dicts
    of the base model), whose best errors are then averaged; a loss diverged if it
    did from any of them. ``scales`` ``[K]`` multiplies each loss
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
    if settings.lr_factors != (1.0,) or settings.eval_every or len(inits) > 1:
        return _grid_fitness(
            stacked, losses, weights, train_data, val_data, kind=kind, settings=settings, scales=scales, inits=inits
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


def _grid_fitness(stacked, losses, weights, train_data, val_data, *, kind, settings, scales=None, inits=()):
    """Every loss from every init at every lr of the grid (``K x S x G`` copies), scored at its best
    (lr, evaluation step) per init, then averaged over the inits."""
    X, G = train_data[0], len(settings.lr_factors)
    starts = [{k: v.to(X.device) for k, v in p.items()} for p in (inits or [stacked.initial_params()])]
    S, R = len(starts), len(starts) * G  # R copies per loss
    copies = losses.repeat_interleave(R) if isinstance(losses, LossProgram) else [c for c in losses for _ in range(R)]
    params = _copies_of(starts, G, len(losses))
    lrs = torch.tensor(
        [settings.lr * f for _ in range(len(losses) * S) for f in settings.lr_factors],
        dtype=next(iter(starts[0].values())).dtype,
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
        weights.repeat_interleave(R, dim=0),
        train_data,
        kind=kind,
        steps=settings.steps,
        lr=lrs,
        sampler=sampler,
        after_step=after_step,
        scales=None if scales is None else scales.repeat_interleave(R),
        cuda_graph=settings.cuda_graph,
    )
    score(outcome.params)  # the last step always counts (a copy that stopped early keeps its parameters)
    per_start = best.reshape(len(losses) * S, G)
    chosen = per_start.argmin(dim=1)
    diverged = outcome.diverged.reshape(len(losses) * S, G).gather(1, chosen.unsqueeze(1)).squeeze(1)
    fitness = per_start.min(dim=1).values.reshape(len(losses), S).mean(dim=1)
    return fitness.tolist(), diverged.reshape(len(losses), S).any(dim=1).tolist()


def _copies_of(starts: list[dict], G: int, K: int) -> dict:
    """Stacked parameters of ``K`` losses x ``len(starts)`` inits x ``G`` lrs, in that order."""
    if len(starts) == 1:
        return StackedModel.replicate(starts[0], K * G)
    per_loss = {k: torch.stack([p[k] for p in starts for _ in range(G)]) for k in starts[0]}
    return {k: v.repeat(K, *([1] * (v.ndim - 1))).clone() for k, v in per_loss.items()}
