"""Gradient-norm normalisation: a candidate loss may not win by being larger.

The ``grad_norm`` loss scaling multiplies each candidate loss by the constant
that gives it the standard loss's (cross-entropy's or MSE's) mean gradient norm
with respect to the model outputs on a fixed probe batch at initialisation:

    scale(w) = mean_b ||d standard_b / d z_b|| / mean_b ||d L_w,b / d z_b||

where ``z`` are the outputs (logits or predictions) of an initial base model on
the probe rows. During local search the scale is part of the loss and
differentiated through, so the meta-gradient cannot reward a larger loss (its
effective learning rate); after local search it is computed once from the
learned weights, frozen, used by partial training, and stored with the learned
loss (:class:`~evomal_sr.losses.symbolic.LearnedLoss` ``scale``), so an exported
loss computes exactly what was scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from evomal_sr.losses.base import same_targets
from evomal_sr.losses.standard import standard_loss_per_copy
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.loop import CandidateLosses

#: Below this mean gradient norm a loss counts as flat at the probe: its scale is 1.
FLAT_GRADIENT = 1e-12


def mean_gradient_norm(values_of, outputs: torch.Tensor, copies: int, *, create_graph: bool) -> torch.Tensor:
    """``[K]`` mean over rows of ``||d loss_b / d z_b||`` at ``z = outputs``, ``values_of(z [K, B, out]) -> [K]``.

    The per-copy losses are means over the rows, so each row's gradient is the
    batch gradient times the number of rows.
    """
    z = outputs.detach().unsqueeze(0).expand(copies, *outputs.shape).clone().requires_grad_(True)
    with torch.enable_grad():
        total = values_of(z).sum()
        if not total.requires_grad:  # no loss depends on the outputs
            return torch.zeros(copies, dtype=z.dtype, device=z.device)
        (grad,) = torch.autograd.grad(total, [z], create_graph=create_graph, allow_unused=True)
    if grad is None:
        return torch.zeros(copies, dtype=z.dtype, device=z.device)
    return (grad * outputs.shape[0]).norm(dim=-1).mean(dim=-1)


@dataclass(frozen=True)
class ScaleProbe:
    """The fixed probe batch: base-model outputs ``[batch, out]`` and their targets ``[batch]``.

    ``reference`` (set on creation) is the standard loss's mean gradient norm there, ``[1]``.
    """

    outputs: torch.Tensor
    targets: torch.Tensor
    kind: str
    reference: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        norm = mean_gradient_norm(
            lambda z: standard_loss_per_copy(z, self.targets, self.kind), self.outputs, 1, create_graph=False
        )
        object.__setattr__(self, "reference", norm.detach())


def probe_scales(losses: Sequence[CompiledLoss], weights: torch.Tensor, probe: ScaleProbe) -> torch.Tensor:
    """``[K]`` scales of the candidates; differentiable in ``weights`` when they require grad.

    Non-finite or flat gradients give a scale of 1 (such a loss is screened out elsewhere).

    Examples
    --------
    >>> import torch
    >>> from evomal_sr.grammar.expression import Expression
    >>> probe = ScaleProbe(torch.randn(8, 3), torch.randint(0, 3, (8,)), "classification")
    >>> losses = [CompiledLoss(Expression.parse(t)) for t in ("-(y * log(fx))", "-((10.0 * y) * log(fx))")]
    >>> [round(float(s), 4) for s in probe_scales(losses, torch.ones(2, 6), probe)]
    [1.0, 0.1]
    """
    population, shared = CandidateLosses(losses, weights, probe.kind), same_targets(probe.targets, len(losses))
    norms = mean_gradient_norm(
        lambda z: population.per_copy(z, shared), probe.outputs, len(losses), create_graph=weights.requires_grad
    )
    usable = torch.isfinite(norms) & (norms > FLAT_GRADIENT)
    safe = torch.where(usable, norms, torch.ones_like(norms))
    return torch.where(usable, probe.reference / safe, torch.ones_like(norms))
