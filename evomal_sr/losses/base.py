"""What a loss is, in code: the contracts every loss of the package (and a user's) satisfies.

A loss is called as ``loss(output, target)`` (logits and labels for
classification, predictions and targets for regression) and says which task
kind it is for. Training code that runs many copies at once asks for the
batched form when the loss has one (:class:`PopulationLoss`), and otherwise
calls the loss once per copy.

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
class PopulationLoss(LossModule, Protocol):
    """A loss with a batched form: copy ``k`` of ``outputs [K, batch, out]`` on ``targets[k]`` -> ``[K]``."""

    def per_copy(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ElementwiseLoss(LossModule, Protocol):
    """A loss of ``(y, fx)`` evaluated elementwise (symbolic, ML3, TaylorGLO), reduced as the task kind says."""

    def elementwise(self, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor: ...
