"""The Pareto front of learned losses (complexity vs validation error) and its entries.

A :class:`ParetoFront` is what searches return and what the
``front``/``export``/``plot``/``evaluate`` commands read; it is the non-dominated
subset of a run's :class:`~evomal_sr.results.hall_of_fame.HallOfFame`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from evomal_sr._version import __version__
from evomal_sr.core.fileio import (
    atomic_write_json,
    atomic_write_text,
    check_header,
    check_origin,
    float_from_json,
    float_to_json,
    is_finite_number,
    is_number,
    read_json,
)
from evomal_sr.core.kinds import check_task_kind
from evomal_sr.core.tables import html_table
from evomal_sr.errors import ConfigError, LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import LearnedLoss, check_scale

FRONT_FORMAT = "evomal-sr/pareto-front"
FRONT_VERSION = 1
#: PySR's rule for "best": among losses within this factor of the most accurate.
KNEE_LOSS_FACTOR = 1.5
#: How a loss is picked from a front, as PySR's ``model_selection``.
SELECTION_RULES = ("accuracy", "best", "score")
#: Significant digits of the constants in equations people read (pareto.csv, ``front``).
EQUATION_DIGITS = 4
#: Largest magnitude of a weight (float32, in which losses compute).
MAX_WEIGHT = 3.4028234663852886e38


@dataclass(frozen=True)
class FrontEntry:
    """One learned loss on a front.

    Attributes
    ----------
    expression : str
        Canonical expression (without weights).
    weights : tuple of float
        Learned edge weights (preorder).
    fitness : float
        Validation error rate or MSE under partial training.
    complexity : int
        The expression's complexity.
    scale : float
        The constant factor of the loss (``loss_scaling="grad_norm"``; 1 otherwise).
    """

    expression: str
    weights: tuple[float, ...]
    fitness: float
    complexity: int
    scale: float = 1.0

    @classmethod
    def from_result(cls, result) -> FrontEntry:
        """The entry of an evaluator :class:`~evomal_sr.scoring.evaluator.FitnessResult`."""
        return cls(
            result.expression, tuple(result.weights), float(result.fitness), result.complexity, float(result.scale)
        )

    def loss(self, task_kind: str, *, metadata: dict | None = None) -> LearnedLoss:
        """The :class:`~evomal_sr.losses.symbolic.LearnedLoss` of this entry."""
        return LearnedLoss(
            self.expression, task=task_kind, weights=list(self.weights), metadata=metadata, scale=self.scale
        )

    def equation(self, digits: int | None = EQUATION_DIGITS) -> str:
        """The expression with its weights folded in and simplified (PySR's ``Equation`` column).

        Constants are shown to ``digits`` significant digits (``None``: exact);
        the exact weights stay in :attr:`weights` and the JSON files.
        """
        folded = LearnedLoss(self.expression, weights=list(self.weights), scale=self.scale).expression_with_weights()
        return folded.simplified().format(digits)

    def to_dict(self) -> dict:
        data = {
            "expression": self.expression,
            "weights": list(self.weights),
            "fitness": float_to_json(self.fitness),
            "complexity": self.complexity,
        }
        if self.scale != 1.0:  # written only when used: fronts without scaling keep their bytes
            data["scale"] = self.scale
        return data

    @classmethod
    def from_dict(cls, data) -> FrontEntry:
        try:
            expr = Expression.parse(data["expression"])
            if not isinstance(data["weights"], list) or not all(is_number(w) for w in data["weights"]):
                raise ValueError("'weights' must be a list of numbers")
            if data["fitness"] is not None and not is_number(data["fitness"]):
                raise ValueError(f"'fitness' must be a number or null, got {data['fitness']!r:.40}")
            weights = tuple(float(w) for w in data["weights"])
            fitness = float_from_json(data["fitness"])
            if len(weights) != expr.size - 1 or not all(abs(w) <= MAX_WEIGHT for w in weights):
                raise ValueError(
                    f"{expr} needs {expr.size - 1} finite weights of at most {MAX_WEIGHT:.4g} "
                    f"in magnitude, got {len(weights)}"
                )
            if data["fitness"] is not None and not 0.0 <= fitness < math.inf:
                raise ValueError(
                    f"'fitness' must be a finite error >= 0 (or null for a rejected loss), got {data['fitness']!r:.40}"
                )
            return cls(str(expr), weights, fitness, expr.complexity, check_scale(data.get("scale", 1.0)))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise LossFileError(f"malformed front entry: {exc}") from None


def non_dominated(entries: Iterable[FrontEntry]) -> list[FrontEntry]:
    """Entries no simpler-or-equal entry beats, by increasing complexity."""
    ordered = sorted(entries, key=lambda e: (e.complexity, e.fitness, e.expression))
    front, best = [], math.inf
    for entry in ordered:
        if entry.fitness < best:
            front.append(entry)
            best = entry.fitness
    return front


class ParetoFront:
    """Non-dominated learned losses, simplest first.

    Parameters
    ----------
    entries : iterable of FrontEntry
        Losses on the front (re-filtered to the non-dominated set).
    task_kind : {"classification", "regression"}
    config : dict, optional
        Run configuration (task, preset, seed, engine, versions) saved alongside.

    Examples
    --------
    >>> front = ParetoFront([FrontEntry("square((fx - y))", (1.0, 1.0, 1.0), 0.3, 4)],
    ...                     task_kind="regression")
    >>> front.select("accuracy").expression
    'square((fx - y))'
    """

    def __init__(self, entries: Iterable[FrontEntry], *, task_kind: str, config: dict | None = None):
        self.entries = non_dominated(entries)
        self.task_kind = check_task_kind(task_kind)
        self.config = dict(config or {})

    @property
    def partial(self) -> dict | None:
        """``{"generation": n, "generations": m}`` for the front of a run still going (or interrupted)."""
        marker = self.config.get("partial")
        return marker if isinstance(marker, dict) else None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[FrontEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> FrontEntry:
        return self.entries[index]

    # -- choosing a loss -------------------------------------------------------------
    def select(self, rule: str | int = "best") -> FrontEntry:
        """Pick a loss by a rule of :data:`SELECTION_RULES` or by index.

        ``"accuracy"``: the lowest error; with the run's ``selection_tolerance``
        setting ``t > 0`` (the ``standard`` preset: 0.05), the simplest loss whose
        error is within ``(1 + t)`` times the lowest, so that a more complex loss
        must beat a simpler one by more than validation noise (on small validation
        splits the most accurate of many candidates is often lucky).
        ``"score"``: the highest :meth:`scores`.
        ``"best"`` (PySR's default): the highest score among losses whose error
        is within 1.5x of the lowest. An integer index works as Python indexing:
        ``0`` is the simplest loss, ``-1`` the most complex (and most accurate).
        """
        return self.entries[self.select_index(rule)]

    def select_index(self, rule: str | int = "best") -> int:
        """The position on the front :meth:`select` picks (an index is returned non-negative)."""
        n = len(self.entries)
        if not n:
            raise ConfigError("the Pareto front is empty: no candidate was trained successfully")
        if isinstance(rule, int) and not isinstance(rule, bool):
            if not -n <= rule < n:
                raise ConfigError(
                    f"index {rule} out of range: the front has {n} losses (0 to {n - 1}, or "
                    f"-{n} to -1 counting from the most complex)"
                )
            return rule % n
        if rule == "accuracy":
            lowest = min(e.fitness for e in self.entries)
            bound = lowest * (1.0 + self.selection_tolerance)
            return min(i for i, e in enumerate(self.entries) if e.fitness <= bound)
        scores = self.scores()
        if rule == "score":
            return max(range(n), key=lambda i: (scores[i], -i))
        if rule == "best":
            lowest = min(e.fitness for e in self.entries)
            eligible = [i for i, e in enumerate(self.entries) if e.fitness <= KNEE_LOSS_FACTOR * lowest]
            return max(eligible, key=lambda i: (scores[i], -i))
        raise ConfigError(f"unknown selection {rule!r}; use 'accuracy', 'best', 'score' or an index")

    @property
    def selection_tolerance(self) -> float:
        """The run's ``selection_tolerance`` setting (0 when the config has none: the most accurate)."""
        settings = self.config.get("settings") if isinstance(self.config, dict) else None
        value = settings.get("selection_tolerance", 0.0) if isinstance(settings, dict) else 0.0
        return float(value) if is_finite_number(value) and value >= 0 else 0.0

    def scores(self) -> list[float]:
        """PySR's score: the drop in log validation error per unit of complexity from the simpler neighbour.

        The simplest entry scores 0. Errors of 0 are floored at 1e-12 for the logarithm.
        """
        floor = 1e-12
        scores = [0.0] * len(self.entries)
        for i in range(1, len(self.entries)):
            prev, entry = self.entries[i - 1], self.entries[i]
            drop = math.log(max(prev.fitness, floor)) - math.log(max(entry.fitness, floor))
            scores[i] = drop / max(entry.complexity - prev.complexity, 1)
        return scores

    def best_loss(self, rule: str | int = "accuracy") -> LearnedLoss:
        """The selected entry as a :class:`LearnedLoss` carrying this front's metadata."""
        entry = self.select(rule)
        return entry.loss(self.task_kind, metadata={"fitness": entry.fitness, **self._loss_metadata()})

    def _loss_metadata(self) -> dict:
        return {k: self.config[k] for k in ("task", "seed", "preset", "engine") if k in self.config}

    # -- exports ---------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """One dict per entry: index, complexity, loss (fitness), score, expression, equation."""
        scores = self.scores()
        return [
            {
                "index": i,
                "complexity": e.complexity,
                "loss": e.fitness,
                "score": scores[i],
                "expression": e.expression,
                "equation": e.equation(),
            }
            for i, e in enumerate(self.entries)
        ]

    def to_dataframe(self):
        """A pandas DataFrame of :meth:`rows` (needs the optional extra: ``pip install 'evomal-sr[pandas]'``).

        Raises
        ------
        ImportError
            In one line naming the extra, when pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("ParetoFront.to_dataframe needs pandas: pip install 'evomal-sr[pandas]'") from None
        return pd.DataFrame(self.rows())

    def to_csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["Complexity", "Loss", "Equation"])
        for e in self.entries:
            writer.writerow([e.complexity, repr(float(e.fitness)), e.equation()])
        return buffer.getvalue()

    def to_csv(self, path) -> Path:
        """PySR's hall-of-fame layout ``Complexity,Loss,Equation`` (weights folded in)."""
        return atomic_write_text(path, self.to_csv_text())

    def to_dict(self) -> dict:
        return {
            "format": FRONT_FORMAT,
            "version": FRONT_VERSION,
            "evomal_sr_version": __version__,
            "task_kind": self.task_kind,
            "config": self.config,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, path) -> Path:
        """Everything needed to rebuild each loss, plus the run's configuration."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data) -> ParetoFront:
        check_header(data, FRONT_FORMAT, FRONT_VERSION, what="Pareto front", error=LossFileError)
        if not isinstance(data.get("entries"), list) or not isinstance(data.get("config", {}), dict):
            raise LossFileError("Pareto front needs an 'entries' list and a 'config' object")
        try:
            kind = check_task_kind(data.get("task_kind"))
        except ConfigError as exc:
            raise LossFileError(str(exc)) from None
        check_origin(data.get("config", {}), error=LossFileError, what="Pareto front 'config'")
        return cls([FrontEntry.from_dict(d) for d in data["entries"]], task_kind=kind, config=data.get("config", {}))

    def plot(self, path, **kwargs) -> Path:
        """Save a plot of error against complexity (PNG or SVG by extension)."""
        from evomal_sr.results.plotting import plot_front

        return plot_front(self, path, **kwargs)

    def table(self) -> str:
        """A plain-text table of the front for terminals.

        ``#`` is the ``--index`` that selects a row; ``pick`` marks the most
        accurate loss (``accuracy``) and PySR's ``best``; ``score`` is
        :meth:`scores`; equations show weights to 4 significant digits.
        """
        lines = [f"{'#':>3}  {'complexity':>10}  {'val. error':>10}  {'score':>7}  {'pick':<13}  equation"]
        if not self.entries:
            return lines[0]
        picks = {}
        for rule in ("accuracy", "best"):
            picks.setdefault(self.select_index(rule), []).append(rule)
        for i, (e, score) in enumerate(zip(self.entries, self.scores())):
            pick = ",".join(picks.get(i, [])) or "-"
            lines.append(f"{i:>3}  {e.complexity:>10}  {e.fitness:>10.4f}  {score:>7.4f}  {pick:<13}  {e.equation()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The :meth:`table` as HTML, for notebooks (as PySR shows its equations)."""
        picks: dict[int, list[str]] = {}
        if self.entries:
            for rule in ("accuracy", "best"):
                picks.setdefault(self.select_index(rule), []).append(rule)
        body = [
            [i, e.complexity, f"{e.fitness:.4f}", f"{score:.4f}", ",".join(picks.get(i, [])) or "-", e.equation()]
            for i, (e, score) in enumerate(zip(self.entries, self.scores()))
        ]
        note = f"Pareto front of {len(self)} {self.task_kind} loss{'es' * (len(self) != 1)}"
        if self.partial:
            note += f" (partial: the run stopped after generation {self.partial.get('generation')})"
        return html_table(["#", "complexity", "val. error", "score", "pick", "equation"], body, before=[note + "."])


def load_front(path) -> ParetoFront:
    """Load a front from ``pareto.json`` or from a run folder that contains one.

    Raises
    ------
    LossFileError
        If the file is missing, malformed or not a Pareto front.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "pareto.json"
    if not os.path.lexists(path):
        if (path.parent / "checkpoint.json").exists():
            raise LossFileError(
                f"no Pareto front at {str(path)!r} yet: the run was interrupted; continue it "
                f"with `evomal-sr search ... --out {str(path.parent)} --resume`"
            )
        raise LossFileError(
            f"no Pareto front at {str(path)!r}; run `evomal-sr search --out DIR` first "
            "(or add --resume to continue an interrupted run)"
        )
    return ParetoFront.from_dict(read_json(path, LossFileError, "Pareto-front file"))
