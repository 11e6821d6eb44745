"""The final selection: after the evolution, which loss would the fair meta-test pick?

The search's own verdict (one seed, one split, a short horizon) is a noisy
predictor of the long, tuned, early-stopped test a user relies on. So the search
ends by re-scoring a short list, the front's most accurate few and every known
loss of the task's kind, with :func:`~evomal_sr.evaluation.metatest.meta_test`'s
own protocol (each loss at its own tuned lr, early-stopped), on the training and
validation rows only, one seed per fold (:func:`fold_tasks`). By default each fold
is scored on the task's validation rows, the rows the user trusts to judge a
model, while a rotating part of the training rows chooses the lr and the stopping
step; ``scoring="folds"`` pools training and validation rows into rotating folds
instead (more rows to score on, but rows whose labels may be noisy when only the
training split is). The test split is never touched.

A learned loss is returned only when it beats the best known loss by more than
``margin`` paired standard errors over the folds: the short list was chosen on the
validation rows, so a learned loss starts with an optimistic bias there, and
returning a known loss that is as good is the honest answer.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from evomal_sr.core.progress import StepProgress
from evomal_sr.core.seeding import derive_seed
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.metatest import meta_test
from evomal_sr.evaluation.report import paired_difference
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss

#: Which candidates the selection treats as learned (from the front) or known (the zoo).
LEARNED, KNOWN = "learned", "known"


@dataclass
class SelectionRow:
    """One candidate of the short list and its errors on the folds (early-stopped, lower is better)."""

    name: str
    kind: str
    loss: str
    errors: list[float]
    search_fitness: float | None = None

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
        The lowest-error known and learned rows.
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
            "seconds": self.seconds,
            "rows": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "loss": r.loss,
                    "errors": [num(e) for e in r.errors],
                    "mean": num(r.mean),
                    "search_fitness": num(r.search_fitness),
                }
                for r in self.rows
            ],
        }

    def _halving(self) -> str:
        if not self.finalists:
            return ""
        return f", the best {self.finalists} and the best of each kind after {SCREENING_FOLDS}"

    def __str__(self) -> str:
        lines = [
            f"final selection ({self.folds} folds{self._halving()}, scored on {_SCORED_ON[self.scoring]}, "
            f"{self.steps} steps, lr tuned, early-stopped; {self.seconds:.0f} s)"
        ]
        for r in sorted(self.rows, key=lambda r: r.mean):
            mark = " <- returned" if r.name == self.winner else ""
            if len(r.errors) < self.folds:  # dropped by successive halving after screening
                mark += f" (screened out after {len(r.errors)} folds)"
            lines.append(f"  {r.kind:8s} {r.mean:9.4f}  {r.name}: {r.loss}{mark}")
        return "\n".join(lines + [self.verdict])


#: Which rows score the short list: "validation" (the task's validation split; folds of the training
#: rows choose each loss's lr and stopping step) or "folds" (rotating folds of the pooled training +
#: validation rows).
SCORINGS = ("validation", "folds")
_SCORED_ON = {"validation": "the validation rows", "folds": "folds of the training + validation rows"}


def fold_tasks(task, folds: int, seed: int, scoring: str = "validation") -> list:
    """``folds`` copies of ``task`` re-split for the final selection; the test split is never used.

    ``scoring="validation"``: fold ``k`` is scored on the task's validation rows, chooses lr and
    stopping step on part ``k`` of a seeded permutation of the training rows and trains on the
    other parts (the meta-test's final run then trains on all training rows).
    ``scoring="folds"``: the training and validation rows are pooled; fold ``k`` is scored on part
    ``k``, validates on part ``k + 1`` and trains on the others. Labels are the user's, noise included.

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0)
    >>> [(len(t.X_train), len(t.X_val), len(t.X_test)) for t in fold_tasks(task, 3, seed=0)]
    [(60, 30, 30), (60, 30, 30), (60, 30, 30)]
    >>> [(len(t.X_train), len(t.X_val), len(t.X_test)) for t in fold_tasks(task, 3, seed=0, scoring="folds")]
    [(40, 40, 40), (40, 40, 40), (40, 40, 40)]
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 3:
        raise ConfigError(
            f"selection_folds must be an integer >= 3 (test, validation and training parts), got {folds!r}"
        )
    if scoring not in SCORINGS:
        raise ConfigError(f"selection_scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    X, y = task.train_and_val() if scoring == "folds" else (task.X_train, task.y_train)
    if len(y) < 2 * folds:
        raise ConfigError(
            f"the final selection needs at least {2 * folds} rows for {folds} folds, got {len(y)}; "
            "use fewer folds or final_selection='none'"
        )
    generator = torch.Generator().manual_seed(derive_seed(seed, "selection-folds"))
    order = torch.randperm(len(y), generator=generator).to(y.device)
    parts = list(torch.tensor_split(order, folds))
    out = []
    for k in range(folds):
        # "folds": part k scores, part k + 1 chooses; "validation": the validation rows score, part k chooses
        val = parts[(k + 1) % folds] if scoring == "folds" else parts[k]
        test = parts[k] if scoring == "folds" else None
        train = torch.cat([p for p in parts if p is not val and p is not test])
        X_test, y_test = (X[test], y[test]) if test is not None else (task.X_val, task.y_val)
        out.append(_fold(task, (X[train], y[train]), (X[val], y[val]), (X_test, y_test)))
    return out


def _fold(task, train: tuple, val: tuple, test: tuple):
    """A copy of ``task`` holding these rows; their noise is not known here, so clean = given, masks empty."""
    fold = copy.copy(task)
    (fold.X_train, fold.y_train), (fold.X_val, fold.y_val), (fold.X_test, fold.y_test) = train, val, test
    fold.y_train_clean, fold.y_val_clean = fold.y_train, fold.y_val
    fold.noisy_mask = torch.zeros(len(fold.y_train), dtype=torch.bool, device=fold.y_train.device)
    fold.noisy_mask_val = torch.zeros(len(fold.y_val), dtype=torch.bool, device=fold.y_val.device)
    return fold


def select_final(
    front,
    task,
    *,
    shortlist: int = 3,
    folds: int = 3,
    steps: int = 1500,
    margin: float = 1.0,
    seed: int = 0,
    preset="quick",
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
    verbose: int = 1,
    scoring: str = "validation",
    finalists: int = 0,
) -> SelectionResult:
    """Re-score the front's best ``shortlist`` losses and the zoo on folds; return the winner.

    Parameters
    ----------
    front : ParetoFront
        The search's front (may be empty: then only known losses compete).
    task : Task
    shortlist : int
        How many of the front's most accurate losses compete.
    folds, steps : int
        Folds of the training + validation rows, SGD steps per run.
    margin : float
        Paired standard errors by which a learned loss must beat the best known loss.
    seed : int
    preset, device
        Where the meta-test takes its lr, batch size and device.
    progress : callable, optional
        Called with the number of training steps just done.
    verbose : int
        1: a progress bar over every fold's steps and a log record per fold; 0: nothing.
    scoring : {"validation", "folds"}
        Which rows score the short list (:func:`fold_tasks`).
    finalists : int
        0: every row runs every fold. ``n > 0``: successive halving; every row runs the first
        :data:`SCREENING_FOLDS` folds, then only the ``n`` rows of lowest mean error there (plus the
        best known and the best learned row, so that the verdict compares them on every fold) run
        the others. Rows dropped early keep their screening errors.

    Examples
    --------
    >>> import evomal_sr as es
    >>> from evomal_sr.results.front import FrontEntry, ParetoFront
    >>> task = es.Task.builtin("iris", seed=0, model="linear")
    >>> front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.1, 5)], task_kind="classification")
    >>> result = select_final(front, task, steps=20, verbose=0)
    >>> result.winner_kind in ("learned", "known")
    True
    """
    tick = time.perf_counter()
    entries = shortlist_entries(front, shortlist)
    learned = {f"learned #{i + 1}": e.loss(task.kind, metadata={"fitness": e.fitness}) for i, e in enumerate(entries)}
    fitness = {f"learned #{i + 1}": e.fitness for i, e in enumerate(entries)}
    errors: dict[str, list[float]] = {}
    descriptions: dict[str, str] = {}
    tasks = fold_tasks(task, folds, seed, scoring)
    bar = StepProgress(
        2 * steps * folds,
        verbose=verbose,
        desc="final selection",
        phases=tuple(f"fold {k + 1}/{folds}" for k in range(folds)),
    )
    advance = bar.update if progress is None else lambda n: (bar.update(n), progress(n))
    competing, baselines = dict(learned), "zoo"
    try:
        for k, fold in enumerate(tasks):
            if finalists and k == SCREENING_FOLDS:
                kept = _finalists(errors, learned, finalists)
                competing = {name: loss for name, loss in learned.items() if name in kept}
                baselines = [_zoo_name(name, task.kind) for name in errors if name in kept and name not in learned]
            report = meta_test(
                competing or None,
                fold,
                seeds=[derive_seed(seed, "selection", k) % 2**31],
                steps=steps,
                baselines=baselines,
                tune_lr=True,
                preset=preset,
                device=device,
                progress=advance,
                verbose=0,
            )
            for row in report.methods:
                errors.setdefault(row.method, []).append(row.early_errors[0])
                descriptions[row.method] = row.loss
    finally:
        bar.close()
    rows = [
        SelectionRow(name, LEARNED if name in learned else KNOWN, descriptions[name], errs, fitness.get(name))
        for name, errs in errors.items()
    ]
    return _decide(
        rows,
        learned,
        task.kind,
        margin,
        folds=folds,
        steps=steps,
        seconds=time.perf_counter() - tick,
        scoring=scoring,
        finalists=finalists,
    )


#: Folds every short-list row runs before successive halving keeps the finalists (``finalists > 0``).
SCREENING_FOLDS = 2


def _finalists(errors: dict[str, list[float]], learned: dict, n: int) -> set[str]:
    """The ``n`` rows of lowest mean screening error, plus the best known and the best learned row."""

    def mean(name: str) -> float:
        return SelectionRow(name, "", "", errors[name]).mean

    ranked = sorted(errors, key=mean)
    kept = set(ranked[:n])
    for group in ([r for r in ranked if r not in learned], [r for r in ranked if r in learned]):
        if group:
            kept.add(group[0])
    return kept


def shortlist_entries(front, shortlist: int) -> list:
    """The front's ``shortlist`` most accurate entries, in order: the selection's ``learned #1``, ``#2``, ..."""
    return sorted(front, key=lambda e: (e.fitness, e.complexity))[:shortlist]


def returned_loss(front, summary: dict) -> torch.nn.Module:
    """The loss a saved final selection returned (``selection.json`` of a run folder, ``summary``).

    A learned winner is rebuilt from its front entry (``learned #k`` is the front's ``k``-th most
    accurate entry), a known winner from the zoo.

    Examples
    --------
    >>> from evomal_sr.results.front import FrontEntry, ParetoFront
    >>> front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.1, 5)], task_kind="classification")
    >>> returned_loss(front, {"winner": "sce", "winner_kind": "known"}).name
    'sce'
    """
    try:
        winner, kind = summary["winner"], summary["winner_kind"]
    except (KeyError, TypeError):
        raise ConfigError("selection.json names no winner and winner_kind; is it a final selection's file?") from None
    if kind == KNOWN and isinstance(winner, str) and winner.split(" #")[0] in KNOWN_LOSSES[front.task_kind]:
        return known_loss(_zoo_name(winner, front.task_kind), front.task_kind)
    entries = shortlist_entries(front, len(front))
    rank = str(winner).removeprefix("learned #")
    if kind != LEARNED or not rank.isdigit() or not 1 <= int(rank) <= len(entries):
        raise ConfigError(f"selection.json's winner {winner!r} ({kind!r}) is not a loss of this run's front")
    entry = entries[int(rank) - 1]
    return entry.loss(front.task_kind, metadata={"fitness": entry.fitness})


def select_with_settings(
    front, task, settings, *, seed: int = 0, device: str = "cpu", verbose: int = 1, scoring: str | None = None
) -> SelectionResult:
    """:func:`select_final` with the ``selection_*`` fields of a :class:`~evomal_sr.core.presets.Preset`.

    ``scoring`` overrides ``settings.selection_scoring`` (the benchmark's ablation runs both).
    """
    return select_final(
        front,
        task,
        shortlist=settings.selection_shortlist,
        folds=settings.selection_folds,
        steps=settings.selection_steps,
        margin=settings.selection_margin,
        seed=seed,
        preset=settings,
        device=device,
        verbose=verbose,
        scoring=settings.selection_scoring if scoring is None else scoring,
        finalists=settings.selection_finalists,
    )


def _decide(rows: list[SelectionRow], learned: dict, kind: str, margin: float, **info) -> SelectionResult:
    """The winner: the best learned row if it beats the best known by ``margin`` paired SEs, else the best known.

    Only rows that ran every fold compete: successive halving leaves screened-out rows with fewer
    folds, whose means are neither comparable nor pairable with the finalists'.
    """
    folds_run = max(len(r.errors) for r in rows)
    known_rows = [r for r in rows if r.kind == KNOWN and len(r.errors) == folds_run]
    learned_rows = [r for r in rows if r.kind == LEARNED and len(r.errors) == folds_run]
    best_known = min(known_rows, key=lambda r: r.mean)
    best_learned = min(learned_rows, key=lambda r: r.mean) if learned_rows else None
    diff, se = math.nan, math.nan
    if best_learned is not None:
        diff, se, _ = paired_difference(best_learned.errors, best_known.errors)
    wins = (
        best_learned is not None
        and math.isfinite(diff)
        and diff < 0
        and (diff < -margin * se if math.isfinite(se) and se > 0 else True)
    )
    if wins:
        assert best_learned is not None
        winner, module = best_learned, learned[best_learned.name]
        verdict = (
            f"{best_learned.name} ({best_learned.loss}) beat the best known loss, {best_known.name}, "
            f"on the folds by {-diff:.4f} ± {se:.4f}; returning the learned loss."
        )
    else:
        winner, module = best_known, known_loss(_zoo_name(best_known.name, kind), kind)
        why = (
            "no learned loss on the front"
            if best_learned is None
            else (
                f"no learned loss beat {best_known.name} by {margin:g} paired standard error(s) on the folds "
                f"(best learned {best_learned.name}: {diff:+.4f} ± {se:.4f})"
            )
        )
        verdict = f"{why}; returning {best_known.name}."
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
        **info,
    )


def _zoo_name(method: str, kind: str) -> str:
    """The zoo name behind a meta-test method name (the report may suffix repeats with ``#2``)."""
    base = method.split(" #")[0]
    if base not in KNOWN_LOSSES[kind]:
        raise ConfigError(f"{method!r} is not a known {kind} loss")
    return base
