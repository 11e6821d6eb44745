"""The final selection's verdict: the rows it compared, the decision, and what it returned.

:func:`decide` takes every short-list row's errors on the folds and returns a
:class:`SelectionResult`: the best learned row when it beats the best known row by
``margin`` paired standard errors, else a known row (the best known one, or a
``prior`` it does not beat). :mod:`evomal_sr.evaluation.selection` runs the folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.method_result import beyond_noise, paired_difference
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss

#: Which candidates the selection treats as learned (from the front) or known (the zoo).
LEARNED, KNOWN = "learned", "known"


@dataclass
class SelectionRow:
    """One candidate of the short list and its errors on the folds (early-stopped, lower is better).

    ``row_errors``: its error on each scored row, averaged over the folds that scored the row (kept
    when it ran every fold): what the sampling error of those rows is estimated from.
    """

    name: str
    kind: str
    loss: str
    errors: list[float]
    search_fitness: float | None = None
    row_errors: list[float] | None = None

    @classmethod
    def from_dict(cls, data: dict) -> SelectionRow:
        """A row of :meth:`SelectionResult.to_dict` read back (an error saved as ``None``, non-finite, as inf).

        Examples
        --------
        >>> SelectionRow.from_dict({"name": "mae", "kind": "known", "loss": "mae", "errors": [0.2, None]}).mean
        inf
        """

        def number(value) -> float:
            return math.inf if value is None else float(value)

        row_errors = data.get("row_errors")
        return cls(
            data["name"],
            data["kind"],
            data["loss"],
            [number(e) for e in data["errors"]],
            data.get("search_fitness"),
            None if row_errors is None else [number(e) for e in row_errors],
        )

    @property
    def mean(self) -> float:
        finite = [e for e in self.errors if math.isfinite(e)]
        return sum(finite) / len(finite) if len(finite) == len(self.errors) and finite else math.inf


@dataclass
class SelectionResult:
    """What the final selection compared and what it returned.

    Attributes
    ----------
    winner : str
        Name of the returned loss (a short-list row).
    winner_kind : {"learned", "known"}
    module : torch.nn.Module
        The returned loss.
    best_known, best_learned : str or None
        The lowest-error known and learned rows (of those run on every fold).
    difference, standard_error : float
        Best learned minus best known, mean over folds, and its paired standard error.
    verdict : str
        One sentence a user can read.
    rows : list of SelectionRow
    folds, steps : int
    seconds : float
    """

    winner: str
    winner_kind: str
    module: torch.nn.Module
    best_known: str | None
    best_learned: str | None
    difference: float
    standard_error: float
    verdict: str
    rows: list[SelectionRow] = field(default_factory=list)
    folds: int = 0
    steps: int = 0
    margin: float = 1.0
    seconds: float = 0.0
    scoring: str = "validation"
    finalists: int = 0
    prior: str | None = None
    metric: str = "task"
    uncertainty: str = "folds"
    scoring_note: str = ""
    lr_extend: int = 0

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers become ``None``)."""

        def num(v):
            return v if isinstance(v, (int, float)) and math.isfinite(v) else None

        return {
            "winner": self.winner,
            "winner_kind": self.winner_kind,
            "best_known": self.best_known,
            "best_learned": self.best_learned,
            "difference": num(self.difference),
            "standard_error": num(self.standard_error),
            "verdict": self.verdict,
            "folds": self.folds,
            "steps": self.steps,
            "margin": self.margin,
            "scoring": self.scoring,
            "finalists": self.finalists,
            "prior": self.prior,
            "metric": self.metric,
            "uncertainty": self.uncertainty,
            "scoring_note": self.scoring_note,
            "lr_extend": self.lr_extend,
            "seconds": self.seconds,
            "rows": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "loss": r.loss,
                    "errors": [num(e) for e in r.errors],
                    "mean": num(r.mean),
                    "search_fitness": num(r.search_fitness),
                    "row_errors": None if r.row_errors is None else [num(e) for e in r.row_errors],
                }
                for r in self.rows
            ],
        }

    def _halving(self) -> str:
        if not self.finalists:
            return ""
        return f", the best {self.finalists} and the best of each kind after {SCREENING_FOLDS}"

    def _scored_rows(self) -> str:
        """How many rows scored the comparisons (what every lead below rests on), where the rows say."""
        counts = {len(r.row_errors) for r in self.rows if r.row_errors is not None}
        return f" ({counts.pop()} rows)" if len(counts) == 1 else ""

    def __str__(self) -> str:
        lines = [
            f"final selection ({self.folds} folds{self._halving()}, scored on {_SCORED_ON[self.scoring]}"
            f"{self._scored_rows()}, "
            f"{self.steps} steps, lr tuned, early-stopped{'; prior ' + self.prior if self.prior else ''}"
            f"{'' if self.metric == 'task' else '; metric ' + self.metric}"
            f"{'; SEs of folds and rows' if self.uncertainty == FOLDS_AND_ROWS else ''}; "
            f"{self.seconds:.0f} s)"
        ]
        if self.scoring_note:
            lines.append(f"  scoring {self.scoring_note}")
        for r in sorted(self.rows, key=lambda r: r.mean):
            mark = " <- returned" if r.name == self.winner else ""
            if len(r.errors) < self.folds:  # dropped by successive halving after screening
                mark += f" (screened out after {len(r.errors)} folds)"
            lines.append(f"  {r.kind:8s} {r.mean:9.4f}  {r.name}: {r.loss}{mark}")
        return "\n".join(lines + [self.verdict])


#: Which rows score the short list: "validation" (the task's validation split; folds of the training
#: rows choose each loss's lr and stopping step), "folds" (rotating folds of the pooled training +
#: validation rows) or "validation-folds" (rotating folds of the validation rows: one scores, the
#: others choose lr and stopping step, as the meta-test's validation rows do; the training rows train).
SCORINGS = ("validation", "folds", "validation-folds")
_SCORED_ON = {
    "validation": "the validation rows",
    "folds": "folds of the training + validation rows",
    "validation-folds": "folds of the validation rows",
}


#: ``selection_prior="robust"``: each task kind's noise-tolerant known loss, returned unless the best known
#: loss beats it. MAE bounds a noisy label's pull on a classifier. On regression the adaptive Huber loss
#: bounds a wild target's pull as MAE does, and keeps MSE's efficiency where the noise is near normal, which
#: MAE gives up: over 23 regression development tasks it was returned and worse than the best known loss by
#: two paired SEs on 4, MAE on 5 (``benchmarks/adaptive_huber_prior.py``; MAE was the prior from the twelfth
#: to the sixteenth session, log-cosh before).
ROBUST_PRIOR = {"classification": "mae", "regression": "adaptive-huber"}
#: ``selection_prior="robust-classes"``: ``"robust"``, but SCE on classifiers with more than this many classes.
#: MAE's pull on the true class's logit is cross-entropy's times that class's probability (1/K at the start),
#: so with many classes it underfits; SCE (cross-entropy plus a reverse term) keeps cross-entropy's pull.
MANY_CLASSES = 5
#: ``selection_prior="robust-shift"``: ``"robust-classes"``, but this loss on a classifier whose training rows'
#: class balance differs from its validation rows' (label shift, :mod:`evomal_sr.evaluation.label_shift`): on the
#: seven class-imbalance tasks the meta-test had judged when it was chosen (thirteenth session), label smoothing
#: was the best known loss (``benchmarks/label_shift_prior.py``).
SHIFT_PRIOR = "label-smoothing"


def prior_of(setting: str, kind: str, n_classes: int | None = None, shifted: bool = False) -> str | None:
    """The known loss a ``selection_prior`` setting names on a task of ``kind`` (None for ``"none"``).

    ``n_classes`` (the task's outputs) matters only to ``"robust-classes"`` and ``"robust-shift"``,
    ``shifted`` (whether the task has label shift) only to ``"robust-shift"``.

    Raises
    ------
    ConfigError
        For a prior that is not a known loss of ``kind`` (``"sce"`` on a regression task).

    Examples
    --------
    >>> prior_of("robust", "regression"), prior_of("robust", "classification"), prior_of("sce", "classification")
    ('adaptive-huber', 'mae', 'sce')
    >>> prior_of("robust-classes", "classification", 3), prior_of("robust-classes", "classification", 10)
    ('mae', 'sce')
    >>> prior_of("robust-shift", "classification", 10, shifted=True), prior_of("robust-shift", "classification", 10)
    ('label-smoothing', 'sce')
    """
    if setting == "none":
        return None
    if setting == "robust-shift":
        return SHIFT_PRIOR if kind == "classification" and shifted else prior_of("robust-classes", kind, n_classes)
    if setting == "robust-classes":
        many = kind == "classification" and n_classes is not None and n_classes > MANY_CLASSES
        return "sce" if many else ROBUST_PRIOR[kind]
    prior = ROBUST_PRIOR[kind] if setting == "robust" else setting
    if prior not in KNOWN_LOSSES[kind]:
        raise ConfigError(
            f"selection_prior {setting!r} is not a known {kind} loss; choose none, robust, robust-classes, "
            "robust-shift or one "
            f"of {', '.join(KNOWN_LOSSES[kind])}"
        )
    return prior


#: Folds every short-list row runs before successive halving keeps the finalists (``finalists > 0``).
SCREENING_FOLDS = 2

#: What the paired standard error of a comparison holds: "folds" (the spread of the paired differences
#: over the folds: the training runs' randomness on the scored rows) or "folds-and-rows" (that and,
#: in quadrature, the sampling error of the scored rows: the spread over rows of their fold-averaged
#: paired differences; with few or noisy validation rows the folds agree on rows that a new sample
#: would not repeat).
FOLDS, FOLDS_AND_ROWS = "folds", "folds-and-rows"
UNCERTAINTIES = (FOLDS, FOLDS_AND_ROWS)


def decide(
    rows: list[SelectionRow],
    learned: dict,
    kind: str,
    margin: float,
    prior: str | None = None,
    uncertainty: str = FOLDS,
    **info,
) -> SelectionResult:
    """The winner: the best learned row if it beats the best known by ``margin`` paired SEs, else a known row.

    The known row is the best known one, or ``prior`` when the best known does not beat it by ``margin``
    paired SEs. Only rows that ran every fold compete: successive halving leaves screened-out rows
    with fewer folds, whose means are neither comparable nor pairable with the finalists'.
    ``uncertainty`` (:data:`UNCERTAINTIES`) says what the paired SE holds.

    ``learned`` maps each learned row's name to its module (the returned ``module``); ``info`` fills
    the other fields of the :class:`SelectionResult` (``folds``, ``steps``, ``seconds``, ...).

    Examples
    --------
    >>> rows = [SelectionRow("sce", KNOWN, "sce", [0.20, 0.25, 0.21]),
    ...         SelectionRow("mae", KNOWN, "mae", [0.22, 0.21, 0.24])]
    >>> decide(rows, {}, "classification", 1.0).winner
    'sce'
    >>> decide(rows, {}, "classification", 1.0, prior="mae").winner  # sce's lead is within one SE
    'mae'
    """
    if uncertainty not in UNCERTAINTIES:
        raise ConfigError(f"selection_uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {uncertainty!r}")
    folds_run = max(len(r.errors) for r in rows)
    known_rows = [r for r in rows if r.kind == KNOWN and len(r.errors) == folds_run]
    learned_rows = [r for r in rows if r.kind == LEARNED and len(r.errors) == folds_run]
    best_known = min(known_rows, key=lambda r: r.mean)
    best_learned = min(learned_rows, key=lambda r: r.mean) if learned_rows else None
    rows_too = uncertainty == FOLDS_AND_ROWS
    wins, diff, se = _beats(best_learned, best_known, margin, rows_too)
    if wins:
        assert best_learned is not None
        winner, module = best_learned, learned[best_learned.name]
        verdict = (
            f"{best_learned.name} ({best_learned.loss}) beat the best known loss, {best_known.name}, "
            f"on the folds by {-diff:.4f} ± {se:.4f}{_of_rows(rows_too)}; returning the learned loss."
        )
    else:
        winner, known_why = _known_winner(best_known, known_rows, prior, margin, rows_too)
        module = known_loss(zoo_name(winner.name, kind), kind)
        why = (
            "no learned loss on the front"
            if best_learned is None
            else (
                f"no learned loss beat {best_known.name} by {margin:g} paired standard error(s)"
                f"{_of_rows(rows_too)} on the folds "
                f"(best learned {best_learned.name}: {diff:+.4f} ± {se:.4f})"
            )
        )
        verdict = f"{why}{known_why}; returning {winner.name}."
    return SelectionResult(
        winner=winner.name,
        winner_kind=winner.kind,
        module=module,
        best_known=best_known.name,
        best_learned=best_learned.name if best_learned else None,
        difference=diff,
        standard_error=se,
        verdict=verdict,
        rows=rows,
        margin=margin,
        prior=prior,
        uncertainty=uncertainty,
        **info,
    )


def _of_rows(rows_too: bool) -> str:
    """What a verdict adds where its standard errors hold the scored rows' sampling error too."""
    return " (folds and rows)" if rows_too else ""


def _beats(
    row: SelectionRow | None, other: SelectionRow, margin: float, rows_too: bool = False
) -> tuple[bool, float, float]:
    """Whether ``row`` has a lower mean than ``other`` by ``margin`` paired SEs, the difference and its SE
    (over the folds; with ``rows_too``, and over the scored rows, in quadrature)."""
    if row is None:
        return False, math.nan, math.nan
    diff, se, _ = paired_difference(row.errors, other.errors)
    if rows_too:
        se = math.hypot(se, row_standard_error(row, other))
    return math.isfinite(diff) and beyond_noise(diff, se, margin) == "better", diff, se


def row_standard_error(row: SelectionRow, other: SelectionRow) -> float:
    """The sampling error of the scored rows in ``row``'s mean minus ``other``'s: the standard error of the
    mean of their paired, fold-averaged row errors' differences.

    Examples
    --------
    >>> a = SelectionRow("a", KNOWN, "a", [0.5, 0.5], row_errors=[1.0, 0.0, 1.0, 0.0])
    >>> b = SelectionRow("b", KNOWN, "b", [0.5, 0.5], row_errors=[0.0, 1.0, 1.0, 0.0])
    >>> round(row_standard_error(a, b), 4)  # the folds agree (SE 0), but two rows of four differ
    0.4082
    """
    if row.row_errors is None or other.row_errors is None or len(row.row_errors) != len(other.row_errors):
        raise ConfigError(
            f"the selection rows {row.name!r} and {other.name!r} hold no errors on the same scored rows; "
            "rerun the final selection (a saved selection from before selection_uncertainty cannot be "
            "decided with 'folds-and-rows')"
        )
    se = paired_difference(row.row_errors, other.row_errors)[1]
    return se if math.isfinite(se) else 0.0


def _known_winner(
    best_known, known_rows, prior: str | None, margin: float, rows_too: bool = False
) -> tuple[SelectionRow, str]:
    """The best known row, or the ``prior`` row where the best known does not beat it; and why, for the verdict."""
    prior_row = next((r for r in known_rows if r.name == prior), None)
    if prior_row is None or prior_row is best_known:
        return best_known, ""
    wins, diff, se = _beats(best_known, prior_row, margin, rows_too)
    if wins:
        return best_known, f"; {best_known.name} beat the prior, {prior}, by {-diff:.4f} ± {se:.4f}"
    return prior_row, f", nor {best_known.name} the prior, {prior} ({diff:+.4f} ± {se:.4f})"


def zoo_name(method: str, kind: str) -> str:
    """The zoo name behind a meta-test method name (the report may suffix repeats with ``#2``)."""
    base = method.split(" #")[0]
    if base not in KNOWN_LOSSES[kind]:
        raise ConfigError(f"{method!r} is not a known {kind} loss")
    return base
