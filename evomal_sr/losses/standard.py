"""The standard loss of each task kind: cross-entropy (binary for one output) or MSE.

It exists once: :func:`standard_loss_per_copy` is the batched form the training
kernel's outer objective uses, and :class:`StandardLoss` the module users and
the meta-test call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from evomal_sr.core.kinds import check_task_kind


def standard_loss_per_copy(outputs: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy or MSE of each copy's outputs ``[K, batch, out]`` -> ``[K]``, against one target shared
    by every copy (``[batch]`` or ``[batch, out]``) or one per copy (with the copies' axis in front)."""
    batch = outputs.shape[1]
    if kind == "classification":
        n_classes = outputs.shape[-1]
        if n_classes == 1:
            t = target.to(outputs.dtype).reshape(-1, batch, 1).expand_as(outputs)
            return F.binary_cross_entropy_with_logits(outputs, t, reduction="none").mean(dim=(1, 2))
        logp = torch.log_softmax(outputs, dim=-1)
        picked = logp.gather(-1, target.long().reshape(-1, batch, 1).expand(outputs.shape[0], -1, 1))
        return -picked.squeeze(-1).mean(dim=1)
    t = target.to(outputs.dtype).reshape(-1, *outputs.shape[1:])
    return ((outputs - t) ** 2).mean(dim=tuple(range(1, outputs.ndim)))


class StandardLoss(torch.nn.Module):
    """The standard loss of a task kind: cross-entropy (binary for one output) or MSE.

    This is the baseline of :func:`~evomal_sr.evaluation.metatest.meta_test`. It equals
    ``LearnedLoss(task.baseline_expression)`` up to the protected logarithm's
    floor, but is computed the usual way (``torch.nn.functional``).

    Examples
    --------
    >>> import torch
    >>> loss = StandardLoss("classification")
    >>> logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
    >>> bool(torch.isclose(loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels)))
    True
    >>> loss.name, loss.n_parameters
    ('cross-entropy', 0)
    """

    n_parameters = 0

    def __init__(self, task: str = "classification"):
        super().__init__()
        self.task = check_task_kind(task)
        self.name = "cross-entropy" if self.task == "classification" else "MSE"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.ndim == 1:
            output = output.unsqueeze(-1)
        if self.task == "regression":
            target = target.reshape(output.shape)
        return standard_loss_per_copy(output.unsqueeze(0), target, self.task)[0]

    def per_copy(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of each copy ``k`` of ``outputs [K, batch, out]`` on its own ``targets[k]`` -> ``[K]``."""
        return torch.stack([self(outputs[k], targets[k]) for k in range(outputs.shape[0])])

    def describe(self) -> str:
        return self.name
