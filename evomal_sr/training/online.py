"""Online edge weights: a learned loss whose weights keep learning while the model trains with it.

A searched loss's edge weights are learned offline (local search, then frozen). Here they keep learning
during the training that uses them, as AdaLFL (Raymond et al., 2023) adapts a neural loss online: at
every step, before the model's own step, the weights take one Adam step down the meta-gradient of the
task's standard loss (cross-entropy or MSE) after one virtual SGD step of the model with the loss, on the
same minibatch. So the online loss uses no rows the training does not already use: no validation rows,
no extra minibatch, and no random draw of its own. Each training copy adapts its own weights.

:class:`OnlineLearnedLoss` is the loss module users pass (for instance to
:func:`~evomal_sr.evaluation.metatest.meta_test`); :meth:`OnlineLearnedLoss.start` makes the state of one
run of several copies, which the population training loop calls at every step.
"""

from __future__ import annotations

import torch

from evomal_sr.core.fileio import is_finite_number
from evomal_sr.errors import ConfigError
from evomal_sr.losses.io import describe_loss
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.training.local_search import unrolled_meta_gradient
from evomal_sr.training.loop import CandidateLosses
from evomal_sr.training.optim import MaskedAdam
from evomal_sr.training.stacked import Params, StackedModel


class OnlineLearnedLoss(torch.nn.Module):
    """A learned loss whose edge weights adapt online during training, one Adam step per training step.

    Called as a module (``loss(output, target)``) it is ``loss`` at its starting weights;
    the adaptation happens where the population training loop runs it
    (:func:`~evomal_sr.evaluation.population.train_copies`, hence ``meta_test``), for models
    without buffers or random layers (a model with BatchNorm or Dropout raises ``ConfigError`` there).

    Parameters
    ----------
    loss : LearnedLoss
        The loss and its starting weights (a searched loss's learned weights, say).
    meta_lr : float
        Adam's step size for the weights (0: the weights never move, and training is
        :class:`~evomal_sr.losses.symbolic.LearnedLoss`'s, bit for bit).

    Examples
    --------
    >>> import torch
    >>> online = OnlineLearnedLoss(LearnedLoss("square(fx - y)", task="regression"), meta_lr=1e-3)
    >>> online.task, online.describe()
    ('regression', 'online(square((fx - y)), meta_lr=0.001)')
    >>> float(online(torch.zeros(3, 1), torch.ones(3)).detach())
    1.0
    """

    def __init__(self, loss: LearnedLoss, *, meta_lr: float = 1e-3):
        super().__init__()
        if not isinstance(loss, LearnedLoss):
            raise ConfigError(f"an online loss adapts a LearnedLoss's edge weights, got {type(loss).__name__}")
        self.loss = loss
        self.task = loss.task
        if not is_finite_number(meta_lr) or meta_lr < 0:
            raise ConfigError(f"meta_lr must be a finite number >= 0 (the weights' Adam step size), got {meta_lr!r}")
        self.meta_lr = float(meta_lr)

    @property
    def n_parameters(self) -> int:
        """The edge weights' count, as the loss it adapts."""
        return self.loss.n_parameters

    def describe(self) -> str:
        """The loss at its starting weights, and the meta step size."""
        return f"online({describe_loss(self.loss)}, meta_lr={self.meta_lr:g})"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(output, target)

    def start(self, stacked: StackedModel, lrs: torch.Tensor) -> OnlineRun:
        """The state of one run of ``len(lrs)`` copies, each training at its own lr ``lrs[k]``."""
        return OnlineRun(self, stacked, lrs)


class OnlineRun:
    """One run's online weights ``[G, E]`` (one row per copy) and their Adam state.

    Called at a training step with the copies' outputs and targets, their parameters and inputs,
    it adapts the weights (:meth:`adapt`), then returns each copy's loss at its new weights.
    """

    def __init__(self, online: OnlineLearnedLoss, stacked: StackedModel, lrs: torch.Tensor):
        if stacked.stateful:  # its extra forwards would move running statistics and dropout draws of the run
            raise ConfigError(
                "online edge weights need a model without buffers or random layers (BatchNorm, Dropout); "
                f"{type(stacked.model).__name__} has some: train it with the LearnedLoss itself"
            )
        loss, copies = online.loss, lrs.shape[0]
        self.kind, self.stacked, self.lrs = loss.task, stacked, lrs
        self.compiled = [loss.compiled] * copies
        self.weights = loss.weights.detach().to(lrs.device).repeat(copies, 1)
        self.scales = None if loss.scale == 1.0 else torch.full_like(lrs, loss.scale)
        self.optimiser = MaskedAdam(self.weights.shape, lr=online.meta_lr, dtype=self.weights.dtype, device=lrs.device)

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor, params: Params, inputs: torch.Tensor):
        """Each copy's loss ``[G]`` on ``outputs`` ``[G, batch, out]`` after adapting its weights on this step."""
        if self.optimiser.lr > 0:  # at 0 the weights never move: no meta-gradient to compute
            self.adapt(params, inputs, targets)
        return CandidateLosses(self.compiled, self.weights, self.kind, self.scales).per_copy(outputs, targets)

    def meta_gradient(self, params: Params, inputs: torch.Tensor, targets: torch.Tensor):
        """The task loss after one virtual SGD step with each copy's loss, at its lr, and its gradient w.r.t. the
        weights (:func:`~evomal_sr.training.local_search.unrolled_meta_gradient` on this step's own minibatch).

        Returns ``(outer [G], grad [G, E], ok [G])``; a copy whose losses or gradient are not finite is not ``ok``.
        """
        batch = (inputs, targets)
        return unrolled_meta_gradient(
            self.stacked,
            params,
            self.compiled,
            self.weights,
            batch,
            batch,
            kind=self.kind,
            lr=self.lrs,
            each=True,
            scales=self.scales,
        )

    def adapt(self, params: Params, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """One Adam step of every ``ok`` copy's weights down :meth:`meta_gradient`."""
        _, grad, ok = self.meta_gradient(params, inputs, targets)
        self.optimiser.step(self.weights, grad, ok)
