"""Cheap checks run before any model is trained: probe gradients and rejection.

* :func:`probe_gradients` evaluates d(loss)/d(fx) on a fixed set of probe
  points; it both detects losses with NaN/inf gradients and serves as the
  fingerprint of the gradient-equivalence cache (:class:`EquivalenceIndex`).
* :func:`rejection_protocol` fits a small batch of raw predictions directly
  with each candidate loss (Adam) and rejects the losses under which the task
  metric does not improve.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss, reduce_loss, target_to_y
from evomal_sr.training.captured import capture_step, captures_on
from evomal_sr.training.loop import CandidateLosses, binary_targets, rows_finite_exact, train_population
from evomal_sr.training.metrics import task_metric
from evomal_sr.training.optim import MaskedAdam


class ProbePoints:
    """Fixed ``(y, fx)`` points where candidate losses are probed (float64).

    Classification probes pair one-hot targets with softmax outputs; regression
    probes pair standard-normal targets and predictions.
    """

    def __init__(self, *, kind: str, n_outputs: int, n_points: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.kind = kind
        if kind == "classification":
            logits = 2.0 * torch.randn(n_points, n_outputs, generator=generator, dtype=torch.float64)
            labels = torch.randint(n_outputs, (n_points,), generator=generator)
            self.fx = torch.softmax(logits, dim=-1)
            self.y = torch.nn.functional.one_hot(labels, n_outputs).to(torch.float64)
        else:
            self.y = torch.randn(n_points, n_outputs, generator=generator, dtype=torch.float64)
            self.fx = torch.randn(n_points, n_outputs, generator=generator, dtype=torch.float64)


def probe_gradients(loss: CompiledLoss, probes: ProbePoints) -> torch.Tensor:
    """Gradient of the (unit-weight) loss w.r.t. ``fx`` at the probe points, flattened."""
    fx = probes.fx.clone().requires_grad_(True)
    weights = torch.ones(max(loss.n_weights, 1), dtype=torch.float64)
    value = reduce_loss(loss(weights, probes.y, fx), probes.kind)
    if not value.requires_grad:  # the loss does not depend on fx at all
        return torch.zeros(fx.numel(), dtype=torch.float64)
    (grad,) = torch.autograd.grad(value, fx, allow_unused=True)
    return (torch.zeros_like(fx) if grad is None else grad).reshape(-1)


class EquivalenceIndex:
    """Fingerprints of evaluated losses; finds one whose probe gradients agree.

    Examples
    --------
    >>> import torch
    >>> index = EquivalenceIndex(rtol=1e-5, atol=1e-7)
    >>> index.add("a", torch.tensor([1.0, 2.0]))
    >>> index.find(torch.tensor([1.0, 2.0 + 1e-9]))
    'a'
    """

    def __init__(self, *, rtol: float, atol: float):
        self.rtol, self.atol = rtol, atol
        self._keys: list[str] = []
        # rows [0, len) are in use; capacity doubles, so adding is amortised O(1) instead
        # of restacking every fingerprint between each add and the next find
        self._matrix: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[str]:
        """Stored keys, in the order they were added (the order :meth:`find` searches)."""
        return list(self._keys)

    def add(self, key: str, fingerprint: torch.Tensor) -> None:
        n = len(self._keys)
        if self._matrix is None or self._matrix.shape[0] == n:
            grown = torch.empty(max(2 * n, 16), fingerprint.numel(), dtype=fingerprint.dtype)
            if self._matrix is not None:
                grown[:n] = self._matrix
            self._matrix = grown
        self._matrix[n] = fingerprint
        self._keys.append(key)

    def find(self, fingerprint: torch.Tensor) -> str | None:
        """Key of the first stored fingerprint equal to ``fingerprint`` within tolerance."""
        if not self._keys or self._matrix is None:
            return None
        stored = self._matrix[: len(self._keys)]
        close = (stored - fingerprint).abs() <= self.atol + self.rtol * fingerprint.abs()
        hits = close.all(dim=1).nonzero()
        return self._keys[int(hits[0])] if hits.numel() else None


def rejection_protocol(
    losses: Sequence[CompiledLoss],
    *,
    kind: str,
    targets: torch.Tensor,
    n_outputs: int,
    steps: int,
    lr: float,
    margin: float,
    seed: int,
    cuda_graph: bool = False,
) -> torch.Tensor:
    """Which candidates pass: fitting raw predictions with them improves the metric.

    Every candidate starts from the same seeded raw predictions (logits for
    classification) for ``targets``; after ``steps`` of Adam on each candidate's
    unit-weight loss, a candidate passes if its metric fell below
    ``(1 - margin)`` times the starting metric and stayed finite. Returns bool [K].
    With ``cuda_graph`` on CUDA one Adam step is recorded and replayed
    (:func:`replayed_fit`, the same numbers).
    """
    K = len(losses)
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(targets.shape[0], n_outputs, generator=generator).to(targets.device)
    raw = start.unsqueeze(0).repeat(K, 1, 1).requires_grad_(True)
    weights = torch.ones(K, max(max(loss.n_weights for loss in losses), 1), device=targets.device)
    # eps well above float32 round-off: a loss whose true gradient is zero must not drift
    optimiser = MaskedAdam(raw.shape, lr=lr, eps=1e-6, device=targets.device)

    def adam_update(params, grads, active):
        optimiser.step(params["raw"], grads[0], active)
        return params

    one_hot = target_to_y(targets, n_outputs, kind, raw.dtype)  # once, not at every step
    y = same_targets(one_hot, K)
    population = CandidateLosses(
        losses, weights, kind, fixed_weights=True, binary_targets=binary_targets(one_hot, kind)
    )
    if cuda_graph and captures_on(targets.device):
        finite = replayed_fit(raw, population, y, optimiser, steps=steps)
    else:
        fit = train_population({"raw": raw}, lambda p, _: population.per_copy(p["raw"], y), adam_update, steps=steps)
        finite = ~fit.diverged.to(targets.device)
    with torch.no_grad():
        initial = task_metric(start.unsqueeze(0), targets, kind)
        final = task_metric(raw.detach(), targets, kind)
    return finite & torch.isfinite(final) & (final < (1.0 - margin) * initial)


def fit_step_static(
    raw: torch.Tensor, population: CandidateLosses, y: torch.Tensor, optimiser: MaskedAdam, active: torch.Tensor
) -> None:
    """One Adam step of the rejection fit that reads nothing back from the device (``raw``, ``active`` in place).

    A copy whose loss or gradient is non-finite stops for good, as in
    :func:`~evomal_sr.training.loop.train_population`; the others get its arithmetic.
    """
    values = population.per_copy(raw, y)
    ok = active & torch.isfinite(values.detach())
    (grad,) = torch.autograd.grad(torch.where(ok, values, torch.zeros_like(values)).sum(), [raw])
    ok = ok & rows_finite_exact([grad])
    rows = ok.reshape(-1, *([1] * (grad.ndim - 1)))
    optimiser.step_static(raw, torch.where(rows, grad, torch.zeros_like(grad)), ok)
    active.copy_(ok)


def replayed_fit(
    raw: torch.Tensor, population: CandidateLosses, y: torch.Tensor, optimiser: MaskedAdam, *, steps: int
) -> torch.Tensor:
    """``steps`` of :func:`fit_step_static`, recorded once as a CUDA graph and replayed; returns bool ``[K]``,
    the copies that stayed finite (``raw`` and ``optimiser`` are updated in place)."""
    active = torch.ones(raw.shape[0], dtype=torch.bool, device=raw.device)
    if steps < 1:
        return active

    def step():
        fit_step_static(raw, population, y, optimiser, active)

    def warm_up():  # scratch predictions and moments: the run's state is not touched
        scratch = raw.detach().clone().requires_grad_(True)
        fit_step_static(scratch, population, y, copy.deepcopy(optimiser), active.clone())

    replay = capture_step(step, warm_up, raw.device)
    for _ in range(steps):
        replay()
    return active
