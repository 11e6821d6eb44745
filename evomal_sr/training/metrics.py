"""The task's metrics: what scores a trained model on held-out rows (error rate, MSE, MAE or Huber).

One copy's score is :func:`task_metric` (``[K]``, the meta-test's and the fitness's number);
:func:`task_metric_rows` gives each row's part of it (``[K, rows]``), from which the final
selection estimates the sampling error of the rows it scores on.
"""

from __future__ import annotations

import torch

from evomal_sr.errors import ConfigError
from evomal_sr.losses.standard import standard_loss_per_copy

#: Cross-entropy or MSE of each copy's outputs [K, batch, out] -> [K]: the task's standard loss.
task_loss = standard_loss_per_copy


#: Validation metrics of a regression task (classification always uses the error rate, whose rows are
#: bounded already): ``"task"`` the MSE; ``"mae"`` the mean absolute error; ``"huber"`` the mean of
#: ``2 * huber(residual, delta)`` with ``delta`` the scored targets' robust spread (1.4826 times their
#: median absolute deviation): the MSE wherever a residual is within it, linear beyond, so that a
#: heavy-tailed label cannot decide which of two models looks better.
METRICS = ("task", "mae", "huber")


def metric_name(kind: str, metric: str = "task") -> str:
    """What :func:`task_metric` measures: ``"error rate"``, ``"MSE"``, ``"MAE"`` or ``"Huber"``.

    Examples
    --------
    >>> metric_name("regression", "huber"), metric_name("classification", "mae")
    ('Huber', 'error rate')
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if kind == "classification":
        return "error rate"
    return {"task": "MSE", "mae": "MAE", "huber": "Huber"}[metric]


def task_metric(outputs: torch.Tensor, target: torch.Tensor, kind: str, metric: str = "task") -> torch.Tensor:
    """Error rate (classification) or the regression ``metric`` (:data:`METRICS`) per copy -> [K], non-finite as inf."""
    if kind == "classification":
        if outputs.shape[-1] == 1:
            predicted = (outputs.squeeze(-1) > 0).long()
        else:
            predicted = outputs.argmax(dim=-1)
        value = (predicted != target.long().unsqueeze(0)).to(outputs.dtype).mean(dim=1)
        finite = torch.isfinite(outputs).all(dim=-1).all(dim=-1)
    elif metric == "task":
        value = task_loss(outputs, target, kind)
        finite = torch.isfinite(value)
    else:
        t = target.to(outputs.dtype).reshape(1, *outputs.shape[1:])
        residual = (outputs - t).abs()
        if metric == "huber":
            delta = robust_spread(t)
            residual = torch.where(residual <= delta, residual.square(), 2 * delta * residual - delta**2)
        value = residual.mean(dim=tuple(range(1, outputs.ndim)))
        finite = torch.isfinite(value)
    return torch.where(finite, value, torch.full_like(value, float("inf")))


def task_metric_rows(outputs: torch.Tensor, target: torch.Tensor, kind: str, metric: str = "task") -> torch.Tensor:
    """Each row's part of :func:`task_metric` -> ``[K, rows]``: 1 where misclassified, else 0 (classification), or
    the row's squared, absolute or Huber error (mean over outputs); inf where a copy's row is non-finite.

    Their mean over rows is :func:`task_metric`'s value (up to round-off). The final selection uses them
    for the sampling error of its scored rows (:func:`~evomal_sr.evaluation.verdict.decide`).

    Examples
    --------
    >>> outputs = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]])  # one copy, three rows
    >>> task_metric_rows(outputs, torch.tensor([0, 0, 0]), "classification").tolist()
    [[0.0, 1.0, 0.0]]
    """
    if kind == "classification":
        predicted = (outputs.squeeze(-1) > 0).long() if outputs.shape[-1] == 1 else outputs.argmax(dim=-1)
        value = (predicted != target.long().unsqueeze(0)).to(outputs.dtype)
    else:
        t = target.to(outputs.dtype).reshape(1, *outputs.shape[1:])
        residual = outputs - t
        value = residual.square() if metric == "task" else residual.abs()
        if metric == "huber":
            delta = robust_spread(t)
            value = torch.where(value <= delta, value.square(), 2 * delta * value - delta**2)
        value = value.reshape(*value.shape[:2], -1).mean(dim=-1)
    finite = torch.isfinite(outputs.reshape(*outputs.shape[:2], -1)).all(dim=-1) & torch.isfinite(value)
    return torch.where(finite, value, torch.full_like(value, float("inf")))


def robust_spread(values: torch.Tensor) -> torch.Tensor:
    """1.4826 times the median absolute deviation of ``values`` (the standard deviation of normal data,
    unmoved by a few wild ones); 1 where that is zero.

    Examples
    --------
    >>> round(float(robust_spread(torch.tensor([0.0, 1.0, 2.0, 1e9]))), 4)
    1.4826
    """
    spread = 1.4826 * (values - values.median()).abs().median()
    return torch.where(spread > 0, spread, torch.ones_like(spread))
