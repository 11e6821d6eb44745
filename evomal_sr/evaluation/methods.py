"""What a meta-test compares: the losses to test, resolved from what users hand in."""

from __future__ import annotations

from pathlib import Path

import torch

from evomal_sr.errors import ConfigError
from evomal_sr.losses.io import load_loss
from evomal_sr.losses.symbolic import LearnedLoss  # noqa: F401  (doctest)
from evomal_sr.results.front import FrontEntry, ParetoFront


def resolve_loss(loss, task_kind: str) -> torch.nn.Module:
    """Turn what :func:`~evomal_sr.evaluation.metatest.meta_test` accepts into a loss module for ``task_kind``.

    ``loss`` may be a :class:`~evomal_sr.losses.symbolic.LearnedLoss` or any
    ``torch.nn.Module`` called as ``loss(output, target)`` with a ``task``
    attribute, a path to a saved loss, a :class:`~evomal_sr.results.front.FrontEntry`
    (taken to be of ``task_kind``) or a :class:`~evomal_sr.results.front.ParetoFront`
    (its most accurate entry).

    Raises
    ------
    ConfigError
        If ``loss`` is of another task kind (transfer refusal) or unusable.

    Examples
    --------
    >>> resolve_loss(LearnedLoss("square(fx - y)", task="regression"), "regression").task
    'regression'
    """
    if isinstance(loss, (str, Path)):
        loss = load_loss(loss)
    elif isinstance(loss, ParetoFront):
        loss = loss.best_loss("accuracy")
    elif isinstance(loss, FrontEntry):
        loss = loss.loss(task_kind)
    if not isinstance(loss, torch.nn.Module):
        raise ConfigError(f"cannot meta-test a {type(loss).__name__}: pass a LearnedLoss, a loss module, "
                          "a path to a saved loss, a FrontEntry or a ParetoFront")
    kind = getattr(loss, "task", None)
    if kind not in ("classification", "regression"):
        raise ConfigError(f"the loss module {type(loss).__name__} needs a 'task' attribute, "
                          "'classification' or 'regression'")
    if kind != task_kind:
        raise ConfigError(
            f"cannot transfer a {kind} loss to a {task_kind} task: a {kind} loss sees "
            + ("softmax probabilities and one-hot labels" if kind == "classification" else "real-valued targets")
            + f", a {task_kind} task gives "
            + ("class labels" if task_kind == "classification" else "real-valued targets")
        )
    return loss
