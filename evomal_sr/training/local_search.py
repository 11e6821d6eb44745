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

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.captured import can_capture, capture_step
from evomal_sr.training.loop import (
    BatchSampler,
    CandidateLosses,
    masked_sum,
    rows_finite,
    rows_finite_exact,
    train_population,
)
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
    lr: float | torch.Tensor,
    inner_steps: int = 1,
    probe: ScaleProbe | None = None,
    each: bool = False,
    scales: torch.Tensor | None = None,
):
    """Validation task loss after ``inner_steps`` SGD steps, and its gradient w.r.t. ``weights``.

    With ``probe`` each loss is normalised by :func:`~evomal_sr.training.scaling.probe_scales`,
    differentiated through; else ``scales`` (``[K]``, fixed) multiplies them. With ``each`` every copy
    has its own batches (inputs ``[K, batch, ...]``, targets ``[K, batch]``), and ``lr`` may be one per
    copy (``[K]``): the online loss's step (:mod:`~evomal_sr.training.online`). Returns ``(outer_losses
    [K], grad [K, E], ok [K])``; rows with a non-finite inner loss, outer loss or gradient are marked
    not ``ok`` (their gradient is zero).
    """
    weights = weights.detach().requires_grad_(True)
    theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    x_tr, y_tr = train_batch
    forward = stacked.each if each else stacked
    if probe is not None:
        scales = probe_scales(losses, weights, probe)
    population = CandidateLosses(losses, weights, kind, scales)
    targets = y_tr if each else same_targets(y_tr, len(losses))

    step_sizes = [_per_copy(lr, v) for v in theta.values()]  # shaped once, not at every inner step

    def unrolled_sgd(theta, grads, _active):  # differentiable: the graph reaches the weights
        return {k: v - size * g for (k, v), size, g in zip(theta.items(), step_sizes, grads)}

    def inner_losses(th, _step):
        return population.per_copy(forward(th, x_tr), targets)

    inner = train_population(theta, inner_losses, unrolled_sgd, steps=inner_steps, create_graph=True)
    theta, ok = inner.params, ~inner.diverged.to(weights.device)
    x_val, y_val = val_batch
    outer = task_loss(forward(theta, x_val), y_val, kind)
    ok &= torch.isfinite(outer.detach())
    if not ok.any():
        return outer.detach(), torch.zeros_like(weights), ok
    total = outer.sum() if bool(ok.all()) else masked_sum(outer, ok)  # the same gradient when every row is ok
    (grad,) = torch.autograd.grad(total, [weights], allow_unused=True)
    if grad is None:  # no candidate's loss depends on its weights (e.g. all constant)
        grad = torch.zeros_like(weights)
    ok &= rows_finite([grad])
    return outer.detach(), torch.where(ok.unsqueeze(-1), grad, torch.zeros_like(grad)), ok


def _per_copy(lr: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """``lr`` as it scales a stacked parameter ``like`` ``[K, ...]``: a number as it is, ``[K]`` copy by copy."""
    if not isinstance(lr, torch.Tensor):
        return lr
    return lr.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


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
    cuda_graph: bool = False,
) -> torch.Tensor:
    """Tune the padded edge weights ``[K, E_max]`` of ``losses``; returns the learned weights.

    ``init_params(i)`` gives the (unstacked) base-model parameters of meta-iteration ``i``;
    ``probe`` normalises every loss's scale (:mod:`evomal_sr.training.scaling`). With
    ``fixed_scale`` each loss's edge weights are rescaled after every step to their initial
    Euclidean norm (padded slots are left as they are). With ``cuda_graph`` one meta-iteration
    (:func:`meta_step_static`) is recorded as a CUDA graph and replayed for every iteration,
    where that is possible (CUDA, a model without buffers or random modules): the same numbers.
    """
    K = len(losses)
    weights = weights.detach().clone()
    edges, norms = _fixed_scale_rows(losses, weights) if fixed_scale else (None, None)
    optimiser = MaskedAdam(weights.shape, lr=meta_lr, dtype=weights.dtype, device=weights.device)
    train_sampler = BatchSampler(train_data[0].shape[0], batch_size, seed)
    val_sampler = BatchSampler(val_data[0].shape[0], batch_size, seed + 1)
    if cuda_graph and can_capture(stacked, weights.device) and iterations > 0:
        inits = [init_params(i) for i in range(iterations)]  # made before the loop: no host work between replays
        rows = [(train_sampler.next(), val_sampler.next()) for _ in range(iterations)]
        options = dict(train_data=train_data, val_data=val_data, kind=kind, lr=lr, inner_steps=inner_steps)
        options.update(probe=probe, edges=edges, norms=norms)
        _replay_meta_iterations(stacked, losses, weights, optimiser, inits, rows, options)
        return weights
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


@dataclass
class MetaInputs:
    """The static inputs of one meta-iteration, refilled before each replay of the captured step."""

    params: Params  # the iteration's initialisation, one copy per candidate [K, ...]
    train_rows: torch.Tensor  # [batch] minibatch rows of the training split
    val_rows: torch.Tensor  # [batch] minibatch rows of the validation split


def meta_step_static(
    stacked: StackedModel,
    losses,
    weights: torch.Tensor,
    optimiser: MaskedAdam,
    inputs: MetaInputs,
    *,
    train_data,
    val_data,
    kind: str,
    lr: float,
    inner_steps: int,
    probe: ScaleProbe | None = None,
    edges: torch.Tensor | None = None,
    norms: torch.Tensor | None = None,
) -> None:
    """One meta-iteration of :func:`local_search` that reads nothing back from the device.

    ``weights`` and ``optimiser`` are updated in place. A candidate whose inner loss, outer loss
    or meta-gradient goes non-finite is masked with ``torch.where`` instead of being dropped, so
    every finite candidate gets the eager iteration's arithmetic and the others are left as they are.
    """
    K = weights.shape[0]
    w = weights.detach().requires_grad_(True)
    theta = {k: v.detach().requires_grad_(True) for k, v in inputs.params.items()}
    x_tr, y_tr = train_data[0][inputs.train_rows], train_data[1][inputs.train_rows]
    scales = None if probe is None else probe_scales(losses, w, probe)
    population, shared = CandidateLosses(losses, w, kind, scales), same_targets(y_tr, K)
    ok = torch.ones(K, dtype=torch.bool, device=weights.device)
    for _ in range(inner_steps):
        values = population.per_copy(stacked(theta, x_tr), shared)
        ok = ok & torch.isfinite(values.detach())
        kept = torch.where(ok, values, torch.zeros_like(values))
        grads = torch.autograd.grad(kept.sum(), list(theta.values()), create_graph=True)
        ok = ok & rows_finite_exact([g.detach() for g in grads])
        theta = {k: v - lr * g for (k, v), g in zip(theta.items(), grads)}
    outer = task_loss(stacked(theta, val_data[0][inputs.val_rows]), val_data[1][inputs.val_rows], kind)
    ok = ok & torch.isfinite(outer.detach())
    (grad,) = torch.autograd.grad(torch.where(ok, outer, torch.zeros_like(outer)).sum(), [w], allow_unused=True)
    grad = torch.zeros_like(weights) if grad is None else grad.detach()
    ok = ok & rows_finite_exact([grad])
    optimiser.step_static(weights, torch.where(ok.unsqueeze(-1), grad, torch.zeros_like(grad)), ok)
    if edges is not None and norms is not None:
        factor = norms / _edge_norms(weights, edges).clamp_min(torch.finfo(weights.dtype).tiny)
        weights.copy_(torch.where(edges, weights * factor, weights))


def _replay_meta_iterations(stacked, losses, weights, optimiser, inits, rows, options) -> None:
    """Every meta-iteration as one step (:func:`meta_step_static`) recorded as a CUDA graph and replayed.

    ``inits`` and ``rows`` hold each iteration's initialisation and ``(train, val)`` minibatch rows;
    between replays only device-to-device copies load them into the step's static inputs, so
    nothing is read back to the host. ``weights`` and ``optimiser`` are updated in place.
    """
    device, K = weights.device, weights.shape[0]
    all_train = torch.stack([tr for tr, _ in rows]).to(device)
    all_val = torch.stack([va for _, va in rows]).to(device)
    inputs = MetaInputs(StackedModel.replicate(inits[0], K), all_train[0].clone(), all_val[0].clone())

    def step():
        meta_step_static(stacked, losses, weights, optimiser, inputs, **options)

    def warm_up():  # scratch weights and moments: the run's state is not touched
        meta_step_static(stacked, losses, weights.clone(), copy.deepcopy(optimiser), inputs, **options)

    replay = capture_step(step, warm_up, device)
    for iteration in range(len(rows)):
        if iteration:
            for name, value in inits[iteration].items():
                inputs.params[name].copy_(value.unsqueeze(0).expand_as(inputs.params[name]))
            inputs.train_rows.copy_(all_train[iteration])
            inputs.val_rows.copy_(all_val[iteration])
        replay()


def _fixed_scale_rows(losses, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real edges (not its padding), bool ``[K, E_max]``, and their norm ``[K, 1]``."""
    edges = torch.arange(weights.shape[-1], device=weights.device) < torch.tensor(
        [[loss.n_weights] for loss in losses], device=weights.device
    )
    return edges, _edge_norms(weights, edges)


def _edge_norms(weights: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm of each row's edge weights (``edges``: bool ``[K, E_max]``) -> ``[K, 1]``."""
    return torch.where(edges, weights, torch.zeros_like(weights)).norm(dim=-1, keepdim=True)
