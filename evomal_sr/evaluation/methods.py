"""What a meta-test compares: the losses to test, resolved from what users hand in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from evomal_sr.errors import ConfigError
from evomal_sr.losses.io import load_loss
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss
from evomal_sr.results.front import FrontEntry, ParetoFront

#: The zoo name of each task kind's standard loss, the baseline every learned loss faces.
STANDARD_LOSS = {"classification": "cross-entropy", "regression": "mse"}


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
        raise ConfigError(
            f"cannot meta-test a {type(loss).__name__}: pass a LearnedLoss, a loss module, "
            "a path to a saved loss, a FrontEntry or a ParetoFront"
        )
    kind = getattr(loss, "task", None)
    if kind not in ("classification", "regression"):
        raise ConfigError(
            f"the loss module {type(loss).__name__} needs a 'task' attribute, 'classification' or 'regression'"
        )
    if kind != task_kind:
        raise ConfigError(
            f"cannot transfer a {kind} loss to a {task_kind} task: a {kind} loss sees "
            + ("softmax probabilities and one-hot labels" if kind == "classification" else "real-valued targets")
            + f", a {task_kind} task gives "
            + ("class labels" if task_kind == "classification" else "real-valued targets")
        )
    return loss


@dataclass(frozen=True)
class Method:
    """One row of a meta-test: its name, its loss module, whether it is the standard-loss baseline or known.

    ``known`` marks every row that came from ``baselines`` (the zoo, the
    standard loss, saved or passed loss modules), as against the losses tested.
    """

    name: str
    module: torch.nn.Module
    baseline: bool = False
    known: bool = False


def _method_name(module: torch.nn.Module) -> str:
    if isinstance(module, LearnedLoss):
        return "learned"
    return getattr(module, "method_name", None) or getattr(module, "name", None) or type(module).__name__


def _baseline_methods(baselines, kind: str) -> list[Method]:
    """Zoo names, ``"standard"``, ``"zoo"``, loss modules or a ``{name: loss}`` mapping -> methods."""
    if isinstance(baselines, str) or isinstance(baselines, Mapping):
        baselines = [baselines]
    standard = STANDARD_LOSS[kind]
    out: list[Method] = []
    for item in baselines:
        if isinstance(item, Mapping):
            out += [Method(str(k), resolve_loss(v, kind), known=True) for k, v in item.items()]
        elif item == "standard":
            out.append(Method(standard, known_loss(standard, kind), True, known=True))
        elif item == "zoo":
            out += [Method(name, known_loss(name, kind), name == standard, known=True) for name in KNOWN_LOSSES[kind]]
        elif isinstance(item, str) and item in KNOWN_LOSSES[kind]:
            out.append(Method(item, known_loss(item, kind), item == standard, known=True))
        elif isinstance(item, str) and not Path(item).exists():
            known_loss(item, kind)  # raises the ConfigError listing the valid names
        else:
            module = resolve_loss(item, kind)
            out.append(Method(_method_name(module), module, known=True))
    return out


def resolve_methods(loss, kind: str, *, method: str | None = None, baselines=("standard",)) -> list[Method]:
    """The tested loss(es) then the baselines, each name once (repeats get ``#2``), each module once.

    Raises
    ------
    ConfigError
        For an unknown baseline name (the valid ones for ``kind`` are listed), a
        loss of the other task kind, or nothing to compare.

    Examples
    --------
    >>> [m.name for m in resolve_methods(LearnedLoss("square(fx - y)", task="regression"), "regression",
    ...                                  baselines=["standard", "huber"])]
    ['learned', 'mse', 'huber']
    """
    if loss is None:
        tested = []
    elif isinstance(loss, Mapping):
        if not loss:
            raise ConfigError("no losses given: the mapping of method names to losses is empty")
        tested = [Method(str(name), resolve_loss(value, kind)) for name, value in loss.items()]
    else:
        module = resolve_loss(loss, kind)
        tested = [Method(method or _method_name(module), module)]
    rows, seen_baseline = [], False
    for row in tested + _baseline_methods(baselines, kind):
        if row.baseline:
            if seen_baseline:
                continue
            seen_baseline = True
        rows.append(row)
    if not rows:
        raise ConfigError("nothing to meta-test: give a loss or at least one baseline")
    counts: dict[str, int] = {}
    unique = []
    for row in rows:
        counts[row.name] = counts.get(row.name, 0) + 1
        name = row.name if counts[row.name] == 1 else f"{row.name} #{counts[row.name]}"
        unique.append(Method(name, row.module, row.baseline, row.known))
    return unique
