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
import time
from collections.abc import Callable

import torch

from evomal_sr.core.progress import StepProgress
from evomal_sr.core.seeding import derive_seed
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.label_shift import label_shift, resolve_scoring
from evomal_sr.evaluation.metatest import meta_test
from evomal_sr.evaluation.verdict import (
    FOLDS,
    KNOWN,
    LEARNED,
    SCORINGS,
    SCREENING_FOLDS,
    SelectionResult,
    SelectionRow,
    decide,
    prior_of,
    zoo_name,
)
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss


def fold_tasks(task, folds: int, seed: int, scoring: str = "validation") -> list:
    """``folds`` copies of ``task`` re-split for the final selection; the test split is never used.

    ``scoring="validation"``: fold ``k`` is scored on the task's validation rows, chooses lr and
    stopping step on part ``k`` of a seeded permutation of the training rows and trains on the
    other parts (the meta-test's final run then trains on all training rows).
    ``scoring="folds"``: the training and validation rows are pooled; fold ``k`` is scored on part
    ``k``, validates on part ``k + 1`` and trains on the others.
    ``scoring="validation-folds"``: the validation rows are split; fold ``k`` is scored on part
    ``k``, chooses lr and stopping step on the other parts and trains on every training row, as
    the meta-test does with the whole validation split. Labels are the user's, noise included.

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0)
    >>> [(len(t.X_train), len(t.X_val), len(t.X_test)) for t in fold_tasks(task, 3, seed=0)]
    [(60, 30, 30), (60, 30, 30), (60, 30, 30)]
    >>> [(len(t.X_train), len(t.X_val), len(t.X_test)) for t in fold_tasks(task, 3, seed=0, scoring="folds")]
    [(40, 40, 40), (40, 40, 40), (40, 40, 40)]
    >>> [(len(t.X_train), len(t.X_val), len(t.X_test)) for t in fold_tasks(task, 3, 0, "validation-folds")]
    [(90, 20, 10), (90, 20, 10), (90, 20, 10)]
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 3:
        raise ConfigError(
            f"selection_folds must be an integer >= 3 (test, validation and training parts), got {folds!r}"
        )
    if scoring not in SCORINGS:
        raise ConfigError(f"selection_scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    X, y = {
        "validation": (task.X_train, task.y_train),
        "folds": task.train_and_val(),
        "validation-folds": (task.X_val, task.y_val),
    }[scoring]
    if len(y) < 2 * folds:
        rows = "validation rows" if scoring == "validation-folds" else "rows"
        raise ConfigError(
            f"the final selection needs at least {2 * folds} {rows} for {folds} folds, got {len(y)}; "
            "use fewer folds or final_selection='none'"
        )
    generator = torch.Generator().manual_seed(derive_seed(seed, "selection-folds"))
    order = torch.randperm(len(y), generator=generator).to(y.device)
    parts = list(torch.tensor_split(order, folds))
    return [_fold_k(task, X, y, parts, k, scoring) for k in range(folds)]


def _fold_k(task, X, y, parts: list, k: int, scoring: str):
    """Fold ``k`` of :func:`fold_tasks`: which part scores, which rows choose, which train."""
    if scoring == "validation-folds":  # part k scores, the other validation parts choose
        chosen = torch.cat([p for j, p in enumerate(parts) if j != k])
        return _fold(task, (task.X_train, task.y_train), (X[chosen], y[chosen]), (X[parts[k]], y[parts[k]]))
    # "folds": part k scores, part k + 1 chooses; "validation": the validation rows score, part k chooses
    val = parts[(k + 1) % len(parts)] if scoring == "folds" else parts[k]
    test = parts[k] if scoring == "folds" else None
    train = torch.cat([p for p in parts if p is not val and p is not test])
    X_test, y_test = (X[test], y[test]) if test is not None else (task.X_val, task.y_val)
    return _fold(task, (X[train], y[train]), (X[val], y[val]), (X_test, y_test))


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
    prior: str | None = None,
    metric: str = "task",
    uncertainty: str = FOLDS,
    lr_extend: int = 0,
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
    scoring : {"validation", "folds", "validation-folds", "auto", "auto-regression"}
        Which rows score the short list (:func:`fold_tasks`); ``"auto"`` is ``"validation-folds"`` where the
        training rows' class balance differs from the validation rows' (label shift,
        :func:`~evomal_sr.evaluation.label_shift.resolve_scoring`), else ``"validation"``;
        ``"auto-regression"`` is ``"validation-folds"`` on regression tasks too.
    finalists : int
        0: every row runs every fold. ``n > 0``: successive halving; every row runs the first
        :data:`SCREENING_FOLDS` folds, then only the ``n`` rows of lowest mean error there (plus the
        best known and the best learned row, so that the verdict compares them on every fold) run
        the others. Rows dropped early keep their screening errors.
    prior : str, optional
        A known loss returned in place of the best known one unless that beats it by ``margin``
        paired standard errors (it always runs every fold). Under label noise the folds often cannot
        tell the known losses apart, and a noise-tolerant default (``"mae"``) is a safer answer than
        the one that was luckiest on noisy validation labels.
    metric : {"task", "mae", "huber"}
        What chooses each fold's lr and stopping step and what scores it on a regression task
        (:data:`~evomal_sr.training.metrics.METRICS`): the meta-test's MSE, or the mean absolute or
        Huber error, whose rows cannot dominate it with a heavy-tailed label (the same validation
        rows score every fold, so one wild label biases every fold alike and the paired standard
        error does not show it). Classification always uses the error rate.
    uncertainty : {"folds", "folds-and-rows"}
        What each paired standard error holds (:data:`~evomal_sr.evaluation.verdict.UNCERTAINTIES`):
        the spread over the folds, or that and the sampling error of the scored rows. With
        ``scoring="validation"`` every fold scores the same validation rows, so the folds alone
        cannot show how much a lead of a few rows owes to which rows were drawn.
    lr_extend : int
        Each fold's lr grid grows up to this many steps past an edge where a loss's best lr lies
        (:func:`~evomal_sr.evaluation.metatest.meta_test`'s ``lr_extend``); 0: the grid as given.

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
    if prior is not None and prior not in KNOWN_LOSSES[task.kind]:
        raise ConfigError(
            f"prior must be a known {task.kind} loss ({', '.join(KNOWN_LOSSES[task.kind])}), got {prior!r}"
        )
    tick = time.perf_counter()
    scoring, scoring_note = resolve_scoring(scoring, task)
    metric = metric if task.kind == "regression" else "task"  # classification folds score the error rate
    entries = shortlist_entries(front, shortlist)
    learned = {f"learned #{i + 1}": e.loss(task.kind, metadata={"fitness": e.fitness}) for i, e in enumerate(entries)}
    fitness = {f"learned #{i + 1}": e.fitness for i, e in enumerate(entries)}
    tasks = fold_tasks(task, folds, seed, scoring)
    bar = StepProgress(
        2 * steps * folds,
        verbose=verbose,
        desc="final selection",
        phases=tuple(f"fold {k + 1}/{folds}" for k in range(folds)),
    )
    advance = bar.update if progress is None else lambda n: (bar.update(n), progress(n))
    try:
        errors, row_errors, descriptions = _run_folds(
            tasks,
            learned,
            finalists=finalists,
            prior=prior,
            seed=seed,
            steps=steps,
            preset=preset,
            device=device,
            progress=advance,
            metric=metric,
            lr_extend=lr_extend,
        )
    finally:
        bar.close()
    rows = [
        SelectionRow(
            name,
            LEARNED if name in learned else KNOWN,
            descriptions[name],
            errs,
            fitness.get(name),
            _per_scored_row(row_errors[name], folds, scoring),
        )
        for name, errs in errors.items()
    ]
    return decide(
        rows,
        learned,
        task.kind,
        margin,
        folds=folds,
        steps=steps,
        seconds=time.perf_counter() - tick,
        scoring=scoring,
        finalists=finalists,
        prior=prior,
        metric=metric,
        uncertainty=uncertainty,
        scoring_note=scoring_note,
        lr_extend=lr_extend,
    )


def _run_folds(tasks: list, learned: dict, *, finalists: int, prior: str | None, seed: int, **meta_test_options):
    """Every competing loss run on each fold (successive halving after :data:`SCREENING_FOLDS` where
    ``finalists``), by :func:`meta_test` with ``meta_test_options``: each row's error per fold, its error on
    each scored row per fold, and its description."""
    errors: dict[str, list[float]] = {}
    row_errors: dict[str, list[list[float]]] = {}  # [fold][scored row]
    descriptions: dict[str, str] = {}
    competing, baselines = dict(learned), "zoo"
    for k, fold in enumerate(tasks):
        if finalists and k == SCREENING_FOLDS:
            kept = _finalists(errors, learned, finalists) | ({prior} & set(errors) if prior else set())
            competing = {name: loss for name, loss in learned.items() if name in kept}
            baselines = [zoo_name(name, fold.kind) for name in errors if name in kept and name not in learned]
        report = meta_test(
            competing or None,
            fold,
            seeds=[derive_seed(seed, "selection", k) % 2**31],
            baselines=baselines,
            tune_lr=True,
            verbose=0,
            row_errors=True,
            **meta_test_options,
        )
        for row in report.methods:
            errors.setdefault(row.method, []).append(row.early_errors[0])
            row_errors.setdefault(row.method, []).append(row.early_row_errors[0])
            descriptions[row.method] = row.loss
    return errors, row_errors, descriptions


def _per_scored_row(by_fold: list[list[float]], folds: int, scoring: str) -> list[float] | None:
    """A row's error on each scored row, averaged over the folds that scored it; None unless it ran every fold.

    With ``scoring="validation"`` every fold scores the same validation rows (the mean over folds);
    otherwise each fold scores its own part (the folds' rows one after another).
    """
    if len(by_fold) < folds:
        return None
    if scoring == "validation":
        return torch.tensor(by_fold, dtype=torch.float64).mean(dim=0).tolist()
    return [e for fold in by_fold for e in fold]


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
        return known_loss(zoo_name(winner, front.task_kind), front.task_kind)
    entries = shortlist_entries(front, len(front))
    rank = str(winner).removeprefix("learned #")
    if kind != LEARNED or not rank.isdigit() or not 1 <= int(rank) <= len(entries):
        raise ConfigError(f"selection.json's winner {winner!r} ({kind!r}) is not a loss of this run's front")
    entry = entries[int(rank) - 1]
    return entry.loss(front.task_kind, metadata={"fitness": entry.fitness})


def task_prior(setting: str, task) -> str | None:
    """The known loss ``selection_prior`` ``setting`` names on ``task`` (:func:`prior_of`; ``"robust-shift"`` tests
    the task for label shift).

    Examples
    --------
    >>> import evomal_sr as es
    >>> task_prior("robust-shift", es.Task.builtin("breast_cancer", seed=0, imbalance=9.0))
    'label-smoothing'
    >>> task_prior("robust-shift", es.Task.builtin("breast_cancer", seed=0))
    'mae'
    """
    shift = label_shift(task) if setting == "robust-shift" else None
    return prior_of(setting, task.kind, task.n_outputs, shifted=shift is not None and shift.shifted)


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
        prior=task_prior(settings.selection_prior, task),
        metric=settings.selection_metric,
        uncertainty=settings.selection_uncertainty,
        lr_extend=settings.selection_lr_extend,
    )
