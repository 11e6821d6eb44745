"""What a loss is, in code: the contracts every loss of the package (and a user's) satisfies.

A loss is called as ``loss(output, target)`` (logits and labels for
classification, predictions and targets for regression) and says which task
kind it is for. Training code that runs ``K`` copies of a model at once uses
one contract for their losses, :class:`PopulationLoss`: ``per_copy(outputs,
targets) -> [K]``, copy ``k``'s loss of ``outputs[k]`` on ``targets[k]``. It
serves one loss applied to ``K`` copies (the zoo and the standard loss define
``per_copy``) as well as ``K`` different losses, one per copy (the search's
candidates, :class:`~evomal_sr.training.loop.CandidateLosses`). Copies that all
see the same rows pass :func:`same_targets`. A loss without ``per_copy`` is
called once per copy.

Examples
--------
>>> from evomal_sr.losses.zoo import known_loss
>>> loss = known_loss("mae", "classification")
>>> isinstance(loss, LossModule), isinstance(loss, PopulationLoss)
(True, True)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class LossModule(Protocol):
    """A training loss: ``loss(output, target) -> scalar``, for ``task`` (``"classification"``/``"regression"``)."""

    task: str

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class PopulationLoss(Protocol):
    """The losses of ``K`` stacked copies at once: copy ``k`` of ``outputs [K, batch, out]`` on ``targets[k]``.

    ``per_copy(outputs, targets)`` returns ``[K]``. ``targets`` carries the copies'
    axis in front (``[K, batch]`` labels or targets, ``[K, batch, out]`` one-hot
    labels or targets); :func:`same_targets` makes it, without a copy, for copies
    that share their rows.
    """

    def per_copy(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ElementwiseLoss(LossModule, Protocol):
    """A loss of ``(y, fx)`` evaluated elementwise (symbolic, ML3, TaylorGLO), reduced as the task kind says."""

    def elementwise(self, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor: ...


def same_targets(target: torch.Tensor, copies: int) -> torch.Tensor:
    """``target`` for ``copies`` copies that all see the same rows: a view ``[copies, *target.shape]``.

    The view's copies axis has stride 0, so an implementation of
    :class:`PopulationLoss` may convert the shared rows once.

    Examples
    --------
    >>> import torch
    >>> t = same_targets(torch.tensor([0, 2, 1]), 4)
    >>> tuple(t.shape), t.stride(0)
    ((4, 3), 0)
    """
    return target.expand(copies, *target.shape)
