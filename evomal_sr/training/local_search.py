"""Local search: learn each candidate's edge weights by unrolled differentiation.

Each meta-iteration draws a fresh base-model initialisation (shared by all
candidates), takes ``inner_steps`` differentiable SGD steps on a training batch
with every candidate's loss, measures the task loss (cross-entropy or MSE) of
the updated models on a validation batch, and backpropagates through the inner
steps to the edge weights, which Adam updates. Weights of different candidates
live in one padded ``[K, E_max]`` tensor; Adam is elementwise, so batching does
not change any candidate's trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.loop import BatchSampler, CandidateLosses, masked_sum, rows_finite, train_population
from evomal_sr.training.metrics import task_loss
from evomal_sr.training.optim import MaskedAdam
from evomal_sr.training.scaling import ScaleProbe, probe_scales
from evomal_sr.training.stacked import Params, StackedModel


def unrolled_meta_gradient(
    stacked: StackedModel,
    params: Params,
    losses: Sequence[CompiledLoss],
    weights: torch.Tensor,
    train_batch,
    val_batch,
    *,
    kind: str,
    lr: float,
    inner_steps: int = 1,
    probe: ScaleProbe | None = None,
):
    """Validation task loss after ``inner_steps`` SGD steps, and its gradient w.r.t. ``weights``.

    With ``probe`` each loss is normalised by :func:`~evomal_sr.training.scaling.probe_scales`,
    differentiated through. Returns ``(outer_losses [K], grad [K, E], ok [K])``; rows with a non-finite
    inner loss, outer loss or gradient are marked not ``ok`` (their gradient is zero).
    """
    weights = weights.detach().requires_grad_(True)
    theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    x_tr, y_tr = train_batch
    scales = None if probe is None else probe_scales(losses, weights, probe)
    population, shared = CandidateLosses(losses, weights, kind, scales), same_targets(y_tr, len(losses))

    def unrolled_sgd(theta, grads, _active):  # differentiable: the graph reaches the weights
        return {k: v - lr * g for (k, v), g in zip(theta.items(), grads)}

    def inner_losses(th, _step):
        return population.per_copy(stacked(th, x_tr), shared)

    inner = train_population(theta, inner_losses, unrolled_sgd, steps=inner_steps, create_graph=True)
    theta, ok = inner.params, ~inner.diverged.to(weights.device)
    x_val, y_val = val_batch
    outer = task_loss(stacked(theta, x_val), y_val, kind)
    ok &= torch.isfinite(outer.detach())
    if not ok.any():
        return outer.detach(), torch.zeros_like(weights), ok
    total = outer.sum() if bool(ok.all()) else masked_sum(outer, ok)  # the same gradient when every row is ok
    (grad,) = torch.autograd.grad(total, [weights], allow_unused=True)
    if grad is None:  # no candidate's loss depends on its weights (e.g. all constant)
        grad = torch.zeros_like(weights)
    ok &= rows_finite([grad])
    return outer.detach(), torch.where(ok.unsqueeze(-1), grad, torch.zeros_like(grad)), ok


def local_search(
    stacked: StackedModel,
    losses: Sequence[CompiledLoss],
    weights: torch.Tensor,
    *,
    init_params: Callable[[int], Params],
    train_data,
    val_data,
    kind: str,
    iterations: int,
    meta_lr: float,
    lr: float,
    inner_steps: int,
    batch_size: int,
    seed: int,
    probe: ScaleProbe | None = None,
    fixed_scale: bool = False,
) -> torch.Tensor:
    """Tune the padded edge weights ``[K, E_max]`` of ``losses``; returns the learned weights.

    ``init_params(i)`` gives the (unstacked) base-model parameters of meta-iteration ``i``;
    ``probe`` normalises every loss's scale (:mod:`evomal_sr.training.scaling`). With
    ``fixed_scale`` each loss's edge weights are rescaled after every step to their initial
    Euclidean norm (padded slots are left as they are).
    """
    K = len(losses)
    weights = weights.detach().clone()
    edges = norms = None
    if fixed_scale:  # each row's real edges (not its padding) and their norm, kept after every step
        edges = torch.arange(weights.shape[-1], device=weights.device) < torch.tensor(
            [[loss.n_weights] for loss in losses], device=weights.device
        )
        norms = _edge_norms(weights, edges)
    optimiser = MaskedAdam(weights.shape, lr=meta_lr, dtype=weights.dtype, device=weights.device)
    train_sampler = BatchSampler(train_data[0].shape[0], batch_size, seed)
    val_sampler = BatchSampler(val_data[0].shape[0], batch_size, seed + 1)
    for iteration in range(iterations):
        params = StackedModel.replicate(init_params(iteration), K)
        tr, va = train_sampler.next(), val_sampler.next()
        _, grad, ok = unrolled_meta_gradient(
            stacked,
            params,
            losses,
            weights,
            (train_data[0][tr], train_data[1][tr]),
            (val_data[0][va], val_data[1][va]),
            kind=kind,
            lr=lr,
            inner_steps=inner_steps,
            probe=probe,
        )
        optimiser.step(weights, grad, ok)
        if edges is not None and norms is not None:
            factor = norms / _edge_norms(weights, edges).clamp_min(torch.finfo(weights.dtype).tiny)
            weights = torch.where(edges, weights * factor, weights)
    return weights


def _edge_norms(weights: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm of each row's edge weights (``edges``: bool ``[K, E_max]``) -> ``[K, 1]``."""
    return torch.where(edges, weights, torch.zeros_like(weights)).norm(dim=-1, keepdim=True)
