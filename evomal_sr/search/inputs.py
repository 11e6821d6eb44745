"""What a search starts from: the task of ``fit(X, y)`` and the first population's guesses."""

from __future__ import annotations

from evomal_sr.core.presets import Preset
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.zoo import zoo_expressions


def as_task(X, y):
    """``X`` itself when it is a Task, else ``Task.from_arrays(X, y)``; a clear error for a bad pair."""
    from evomal_sr.data.tasks import Task

    if isinstance(X, Task):
        if y is not None:
            raise ConfigError("fit(task) takes no y: the task holds its targets")
        return X
    if y is None:
        raise ConfigError("fit(X, y) needs y with arrays, or pass a Task: fit(es.Task.builtin('digits'))")
    return Task.from_arrays(X, y)


def initial_guesses(task, settings: Preset) -> list[str]:
    """The initial population's guesses of ``settings.initial_losses``: the standard loss, or the zoo.

    Examples
    --------
    >>> import evomal_sr as es
    >>> from evomal_sr.core.presets import resolve_preset
    >>> initial_guesses(es.Task.builtin("diabetes"), resolve_preset("standard", initial_losses="zoo"))[:2]
    ['square((fx - y))', 'abs((fx - y))']
    """
    if settings.initial_losses == "baseline":
        return [task.baseline_expression]
    baseline = str(Expression.parse(task.baseline_expression))
    return [baseline, *(text for text in zoo_expressions(task.kind, settings.operators) if text != baseline)]
