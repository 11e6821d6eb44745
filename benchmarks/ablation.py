"""Which settings of the default search predict, and win, the fair meta-test? Ablations on the suite.

A variant overrides settings of the ``standard`` preset. The suite's saved searches ran with the
fitness the default had before ``fitness-seeds-2-grid-2`` (``SUITE_FITNESS``); selection variants
reuse them.

* **Selection variants** (only ``selection_*`` settings) reuse the suite's saved searches: the
  suite's meta-test (``run_results.py``) already holds every loss a final selection can return
  (the front's best three and every known loss), each with its early-stopped test error per
  seed. The selection is rerun with the variant's settings on the saved front (training and
  validation rows only) and its winner's meta-test errors are looked up.
* **Search variants** (any other setting, e.g. the grammar) rerun the search and its selection,
  then meta-test the new short list of learned losses with the suite's protocol and seeds
  (``meta_test(..., tune_lr=True)``, the standard loss beside them as a check that the runs
  are paired with the saved ones); a known winner is looked up in the suite's meta-test.

Reported per variant and half: on how many tasks the winner is worse than the best known loss
(two paired standard errors), on how many noisy tasks a learned winner is better, the mean gap
to the best known loss, how often a learned loss is returned, the rank agreement (Spearman)
with the fair test, and the time.

Usage::

    python benchmarks/ablation.py --variant validation-1500 --half development
    python benchmarks/ablation.py --report-only   # the table, from saved files

Variants are chosen on the development half; the evaluation half is run only for the chosen one.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from run_results import machine  # noqa: E402
from suite import DEVELOPMENT, EVALUATION, TASKS, half  # noqa: E402
from task_results import SEARCH_FROM, TaskResult, selection_signature, spearman, with_learned_rows, write_table  # noqa: E402

from evomal_sr import LossSearch  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.evaluation.label_shift import resolve_scoring  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import paired_difference  # noqa: E402
from evomal_sr.evaluation.selection import select_with_settings, shortlist_entries  # noqa: E402
from evomal_sr.evaluation.verdict import MANY_CLASSES, SelectionRow, decide  # noqa: E402
from evomal_sr.results.front import load_front  # noqa: E402

SUITE = ROOT / "results" / "suite"
OUT = ROOT / "results" / "ablation"

#: Each variant: overrides of the ``standard`` preset.
NO_PRIOR = {"selection_prior": "none"}
THREE = {"selection_folds": 3, "selection_finalists": 0, **NO_PRIOR}  # every row on three folds (before halving)
DEFAULT = {"selection_folds": 5, "selection_finalists": 4, "selection_prior": "mae"}  # halving-5folds-4-mae
# the fitness of the suite's saved searches (the default until fitness-seeds-2-grid-2 replaced it): search
# variants run before that pin it, so that they mean today what they meant when they ran
SUITE_FITNESS = {"fitness_lr_grid": 4, "fitness_lr_ratio": 3.1623, "fitness_seeds": 1}
GRID_2 = {"fitness_seeds": 2, "fitness_lr_grid": 2, "fitness_lr_ratio": 10.0}  # the default's fitness since
ROWS_15 = {"selection_uncertainty": "folds-and-rows", "selection_margin": 1.5}  # the default's decision since
VARIANTS: dict[str, dict] = {
    "validation-600": {"selection_scoring": "validation", "selection_steps": 600, **THREE},
    "folds-600": {"selection_scoring": "folds", "selection_steps": 600, **THREE},
    "validation-1500": {"selection_scoring": "validation", "selection_steps": 1500, **THREE},
    "folds-1500": {"selection_scoring": "folds", "selection_steps": 1500, **THREE},
    "robust-grammar": {**SUITE_FITNESS, "operators": "robust", **THREE},
    # more folds for the verdict: five folds for every row, or successive halving (every row runs
    # two folds, the four best and the best known and learned run three more: about today's cost)
    "validation-1500-5folds": {"selection_folds": 5, "selection_finalists": 0, **NO_PRIOR},
    "halving-5folds-4": {"selection_folds": 5, "selection_finalists": 4, **NO_PRIOR},
    # the same, but a known loss other than MAE (noise-tolerant) is returned only where it beats MAE by
    # one paired SE on the folds (MAE always runs every fold)
    "halving-5folds-4-mae": DEFAULT,
    # the same, but the lr and stopping step of each fold chosen on validation rows, as the meta-test
    # chooses them (folds of the validation rows: one scores, the others choose; the training rows
    # train), where "validation" chooses on a part of the training rows, noisier on train-only noise
    "validation-folds-mae": {
        "selection_scoring": "validation-folds",
        "selection_folds": 5,
        "selection_finalists": 4,
        "selection_prior": "mae",
    },
    # the default, but each fold's lr, stopping step and score by the mean absolute error or the Huber
    # error on regression tasks (selection_metric): the same validation rows score every fold, so one
    # heavy-tailed label biases every fold alike under MSE; classification keeps the error rate (rows
    # as the default's)
    "metric-mae": {**DEFAULT, "selection_metric": "mae"},
    "metric-huber": {**DEFAULT, "selection_metric": "huber"},
    # the default, but every candidate's fitness is the mean of its best validation errors from two
    # initialisations (fitness_seeds=2: about twice the training of the search)
    "fitness-seeds-2": {**SUITE_FITNESS, **DEFAULT, "fitness_seeds": 2},
    # the same at the default's cost: two initialisations x two lrs (lr x {1, 10}) instead of one x four
    # (the default since, chosen on the development half)
    "fitness-seeds-2-grid-2": {**DEFAULT, **GRID_2},
    # the default now, with the front's best five (not three) on the final selection's short list: the
    # same search (same seed and settings), more learned losses for the selection to find a winner among
    "shortlist-5": {**DEFAULT, **GRID_2, "selection_shortlist": 5},
    # the default now, with 16 generations instead of 12 (a third more search, near the 5-minute budget;
    # not kept: 269-333 s alone on mnist1d-noise20-val, over the budget at the median, results_prose.md)
    "generations-16": {**DEFAULT, **GRID_2, "generations": 16},
    # the default now, with five times the local search (100 meta-iterations of the edge weights, not 20):
    # the EvoMAL mechanism that fits a loss's shape (GCE's q, SCE's mix) to the task; a profile of the
    # default search put local search at 1.2% of its time (breast_cancer-asym40-val, py-spy); not kept:
    # on the development half 1 task worse than the best known (digits-pair20) and 0 learned better
    "meta-iterations-100": {**DEFAULT, **GRID_2, "meta_iterations": 100},
    # the same, but each loss's edge weights kept at their initial norm (local_search_scale="fixed"): in
    # meta-iterations-100 the weights mostly grew together (a scale the lr grid already chooses), so
    # here the longer local search can only reshape the loss; not kept: tied on the targets and better on
    # the gap on the development half, but 308-312 s alone on mnist1d-noise20-val, over the budget
    "fixed-scale-100": {**DEFAULT, **GRID_2, "meta_iterations": 100, "local_search_scale": "fixed"},
    # the default's own local search (20 meta-iterations) with each loss's edge weights kept at their
    # initial norm: the fixed scale at the default's cost, where fixed-scale-100 was over the budget;
    # not kept: on the development half 1 task worse than the best known (digits-pair20), 0 learned better
    "fixed-scale": {**DEFAULT, **GRID_2, "local_search_scale": "fixed"},
    # the same with five times the meta-lr (0.05): Adam moves each weight by about the meta-lr per
    # iteration, so 20 iterations travel about as far as fixed-scale-100's 100, at the default's cost;
    # not kept: on the development half 0 learned losses better than the best known, against the default's 1
    "fixed-scale-lr5": {**DEFAULT, **GRID_2, "local_search_scale": "fixed", "meta_lr": 0.05},
    # the default's decision with another margin (selection_margin: how many paired SEs a learned loss
    # must beat the best known loss by, and a known loss the prior): the rows do not depend on it, so
    # each is derived from fitness-seeds-2-grid-2's saved rows; a sweep on the development half
    **{f"margin-{m:g}": {**DEFAULT, **GRID_2, "selection_margin": m} for m in (0.5, 1.5, 2.0, 3.0)},
    # the default, but each decision's paired SE holds the sampling error of the scored rows too (in
    # quadrature with the folds'): every fold scores the same validation rows, so the folds alone cannot
    # show how much a lead of a few rows owes to which rows were drawn (the fresh wine probe, RESULTS.md);
    # reruns only the selection, on fitness-seeds-2-grid-2's fronts (SEARCH_FROM), then every margin
    "rows": {**DEFAULT, **GRID_2, "selection_uncertainty": "folds-and-rows"},
    **{
        f"rows-margin-{m:g}": {**DEFAULT, **GRID_2, "selection_uncertainty": "folds-and-rows", "selection_margin": m}
        for m in (1.5, 2.0, 3.0)
    },
    # the default now (rows-margin-1.5) with each kind's noise-tolerant prior (selection_prior="robust": MAE for
    # classification, as now; log-cosh for regression, the best known loss on 3 of the 6 development regression
    # tasks, MAE on 1): reruns the selection of the regression tasks only, on fitness-seeds-2-grid-2's fronts;
    # a classification task's selection is rows-margin-1.5's (the same prior there). Judged by the probes' rule
    # (benchmarks/probe_tasks.py), written before it ran
    "robust-prior": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust"},
    # the default now (robust-prior) with SCE as the prior on every task: run on the ten-class tasks only, for
    # classes-sce; SCE is a classification loss
    "prior-sce": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "sce"},
    # the default now, but SCE, not MAE, the prior on tasks with more than MANY_CLASSES classes: robust-prior's run
    # on the other tasks, prior-sce's on those (BY_TASK); judged by the probes' rule, written before it ran
    "classes-sce": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust", "many_classes_prior": "sce"},
    # the default now, but each fold's lr and stopping step chosen on validation rows where the training rows'
    # class balance differs from the validation rows' (selection_scoring="auto": label shift, a chi-square test at
    # 1%; evaluation.label_shift); elsewhere robust-prior's run (BY_TASK). Judged by the probes' rule
    "auto-scoring": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust", "selection_scoring": "auto"},
    # the default now (robust-classes), with the first population's slots after the zoo filled with variants of
    # the zoo's losses (one crossover or subtree mutation each; initial_fill="variants") instead of random trees,
    # so the twelve generations search around the known losses (the issue's "evolution seeded from the zoo's
    # best"). Judged on the development half by the rule the earlier search variants were: the targets in order
    # (tasks worse than the best known, noisy tasks 20% below the standard loss, learned better than the best
    # known), then the mean gap; a tie keeps the default; kept only within the 5-minute budget timed alone. Not
    # kept: on the development half 1 task worse than the best known (breast_cancer-imbalance9), 0 learned better
    "zoo-variants": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust-classes", "initial_fill": "variants"},
    # the default now (robust-classes) with the extended grammar (operators="extended": adds exp), so the first
    # population holds GCE and log-cosh too, the best known losses of several noisy development tasks, which the
    # paper grammar cannot write, and local search can tune GCE's q (an edge weight on its constant). robust-grammar
    # (exp, pow and huber) was measured with an older selection and fitness; same rule as zoo-variants. Not kept: on
    # the development half 0 learned losses better than the best known (the default: 1), a tie on the other targets
    "extended-grammar": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust-classes", "operators": "extended"},
    # fixed-scale-100's searches (100 meta-iterations at a fixed scale: tied on the targets and better on the gap
    # with the selection of its day, over the budget alone on a slow day before FrozenLoss) with the default's
    # selection now (robust-classes, 1.5 SEs of folds and rows): reruns only the selection on its saved fronts
    # (SEARCH_FROM; FrozenLoss computes the same bits, so the search would find the same fronts today). Same rule
    # as zoo-variants, and kept only if timed alone within the budget, in alternation with the default: on a fast day
    # the seconds flatter, so the budget is read as (its time / the default's, two pairs on mnist1d-noise20-val) x
    # the default's slow-day 257 s in RESULTS.md <= 300 s, a ratio of at most 1.167. Measured 1.15 (2 pairs) and made
    # the default, with a condition written before its evaluation half ran: reverted if that half had more tasks worse
    # than the best known than the default's 0. It had 1 (friedman1-outliers20): reverted, not the default
    "fixed-scale-100-now": {
        **DEFAULT,
        **GRID_2,
        **ROWS_15,
        "selection_prior": "robust-classes",
        "meta_iterations": 100,
        "local_search_scale": "fixed",
    },
    # a longer fitness horizon (the search's candidates train 1000 steps, not 500), with the default selection
    "horizon-1000": {**SUITE_FITNESS, "train_steps": 1000, "selection_folds": 5, "selection_finalists": 4, **NO_PRIOR},
}


def many_classes(task) -> bool:
    """Whether ``task`` is a classifier with more than ``MANY_CLASSES`` classes (the selection prior's threshold)."""
    return task.kind == "classification" and task.n_outputs > MANY_CLASSES


def label_shifted(task) -> bool:
    """Whether ``selection_scoring="auto"`` changes the scoring on ``task`` (label shift)."""
    return resolve_scoring("auto", task)[0] != "validation"


#: Variants that are other variants' runs, task by task: name -> (which tasks they differ on, the variant they are
#: on the other tasks, the variant they are on those; None: they run there themselves).
BY_TASK = {
    "classes-sce": (many_classes, "robust-prior", "prior-sce"),
    "auto-scoring": (label_shifted, "robust-prior", None),
}
#: The variants the suite run itself saved (``search.json``'s selections): name -> selection_signature.
SAVED = {
    "validation-600": ("validation", 600, 3, 0, "none"),
    "folds-600": ("folds", 600, 3, 0, "none"),
    "validation-1500": ("validation", 1500, 3, 0, "none"),
    "halving-5folds-4": ("validation", 1500, 5, 4, "none"),
    "halving-5folds-4-mae": ("validation", 1500, 5, 4, "mae"),
}


def is_search_variant(name: str) -> bool:
    """Whether variant ``name`` runs its own search (not the suite's, nor another variant's: SEARCH_FROM)."""
    return name not in SEARCH_FROM and any(not key.startswith("selection_") for key in VARIANTS[name])


def searched(name: str, key: str) -> Path:
    """The folder holding the search (``search/pareto.json``) and learned losses' meta-test variant ``name`` uses."""
    if name in SEARCH_FROM:
        return searched(SEARCH_FROM[name], key)
    return OUT / name / key if is_search_variant(name) else SUITE / key


def settings_of(name: str) -> dict:
    """Variant ``name``'s overrides of the ``standard`` preset, with the margin every variant before
    ``margin-2`` ran with (one paired SE) where it sets none, so that each means what it meant when it ran."""
    return {"selection_margin": 1.0, **VARIANTS[name]}


def margin_base(name: str) -> str | None:
    """The variant whose settings ``name``'s are but for ``selection_margin`` (its rows are that one's), else None."""
    settings = VARIANTS[name]
    if "selection_margin" not in settings:
        return None
    without = {k: v for k, v in settings.items() if k != "selection_margin"}
    return next((n for n, v in VARIANTS.items() if v == without), None)


def run_variant(name: str, keys: list[str], args) -> None:
    for key in keys:
        target = OUT / name / f"{key}.json"
        if target.exists():
            print(f"[{name}] {key}: done before", flush=True)
            continue
        if name in BY_TASK:
            derived = _by_task(name, key, args.seed)
        else:
            derived = _with_prior(name, key) or _same_on_classification(name, key) or _with_margin(name, key)
        if derived is not None:
            print(f"[{name}] {key}: derived from {derived['derived_from']}", flush=True)
            atomic_write_json(target, {**derived, "command": " ".join(sys.argv)})
            continue
        task = TASKS[key].build(args.seed)
        tick = time.perf_counter()
        if is_search_variant(name):
            search = LossSearch(seed=args.seed, out_dir=OUT / name / key / "search", force=True, **settings_of(name))
            result = search.fit(task).selection_
            seconds = time.perf_counter() - tick
            shortlist = shortlist_entries(search.pareto_front_, search.settings_.selection_shortlist)
            learned = {f"learned #{i + 1}": e.loss(task.kind) for i, e in enumerate(shortlist)}
            # the grid as given, no fallback: the known losses' rows this is judged against are the suite's, run so
            report = meta_test(
                learned,
                task,
                seeds=args.seeds,
                steps=args.steps,
                tune_lr=True,
                lr_extend=0,
                lr_fallback=False,
                preset="quick",
                seed=args.seed,
            )
            report.to_json(OUT / name / key / "metatest.json")
        else:
            front = load_front(searched(name, key) / "search" / "pareto.json")
            result = select_with_settings(front, task, resolve_preset("standard", **settings_of(name)), seed=args.seed)
            seconds = time.perf_counter() - tick
        print(f"[{name}] {key}: {seconds:.0f} s\n{result}", flush=True)
        record = with_search_seconds(
            name, key, {"selection": result.to_dict(), "seconds": seconds, "machine": machine()}
        )
        atomic_write_json(target, {**record, "command": " ".join(sys.argv)})


def with_search_seconds(name: str, key: str, record: dict) -> dict:
    """A run of a variant that reran only the selection of another's search (SEARCH_FROM): its ``seconds`` are
    that search's, as timed when it ran, plus this selection's, so that they count what a user waits for."""
    if name not in SEARCH_FROM or "selection_seconds" in record:
        return record
    base = saved_selection(SEARCH_FROM[name], key)
    if base is None:
        return record
    search = base["seconds"] - base["selection"]["seconds"]
    return {**record, "seconds": search + record["seconds"], "selection_seconds": record["seconds"]}


def _with_prior(name: str, key: str) -> dict | None:
    """Variant ``name``'s selection derived without a rerun, where that is exact, else None.

    A variant that only adds ``selection_prior`` to another runs the same rows on the same folds
    (each row's errors do not depend on the others), plus the prior on every fold: where the other
    variant's saved run already has the prior on every fold, only the decision differs.
    """
    settings = VARIANTS[name]
    prior = settings.get("selection_prior", "none")
    base = next((n for n, v in VARIANTS.items() if v == {**settings, "selection_prior": "none"}), None)
    if prior == "none" or base is None or is_search_variant(name):
        return None
    record = saved_selection(base, key)
    if record is None:
        return None
    chosen = record["selection"]
    every_fold = max(len(r["errors"]) for r in chosen["rows"])
    if not any(r["name"] == prior and len(r["errors"]) == every_fold for r in chosen["rows"]):
        return None
    summary = {
        **redecide(chosen, chosen["margin"], prior),
        "derived_from": f"{base}'s saved rows (the prior ran every fold)",
    }
    return {"selection": summary, "seconds": record["seconds"], "derived_from": summary["derived_from"]}


def _by_task(name: str, key: str, seed: int) -> dict | None:
    """Variant ``name`` (BY_TASK) on task ``key``: the run of the variant it is there, or None where it runs itself."""
    differs, elsewhere, there = BY_TASK[name]
    on_these = differs(TASKS[key].build(seed))
    base = there if on_these else elsewhere
    if base is None:
        return None
    record = saved_selection(base, key)
    if record is None:
        raise SystemExit(f"[{name}] {key}: run variant {base} on it first")
    return _reused(base, record, f"run ({differs.__name__}: {on_these})")


def _reused(base: str, record: dict, why: str) -> dict:
    """Variant ``base``'s saved run ``record`` reused as another variant's, saying ``why`` (its rows stay ``base``'s,
    or those ``base`` reused)."""
    summary = {**record["selection"], "derived_from": f"{base}'s {why}"}
    rows_from = record.get("rows_from", base)
    return {**record, "selection": summary, "derived_from": summary["derived_from"], "rows_from": rows_from}


def _with_margin(name: str, key: str) -> dict | None:
    """Variant ``name``'s selection, where it differs from another only in ``selection_margin``: the same rows
    (the margin enters only the decision, not which loss runs which fold), decided again; else None."""
    base = margin_base(name)
    record = saved_selection(base, key) if base else None
    if record is None:
        return None
    chosen = record["selection"]
    summary = {
        **redecide(chosen, VARIANTS[name]["selection_margin"], chosen["prior"]),
        "derived_from": f"{base}'s saved rows (the margin enters only the decision)",
    }
    return {
        "selection": summary,
        "seconds": record["seconds"],
        "derived_from": summary["derived_from"],
        "rows_from": base,
    }


def redecide(chosen: dict, margin: float, prior: str | None, uncertainty: str | None = None) -> dict:
    """A saved selection's rows decided again with ``margin``, ``prior`` and ``uncertainty`` (default: its own)."""
    rows = [SelectionRow.from_dict(r) for r in chosen["rows"]]
    kind = "classification" if any(r.name == "cross-entropy" for r in rows) else "regression"
    info = {k: chosen[k] for k in ("folds", "steps", "seconds", "scoring", "finalists", "metric") if k in chosen}
    learned = {r.name: None for r in rows if r.kind == "learned"}
    uncertainty = uncertainty or chosen.get("uncertainty", "folds")
    return decide(rows, learned, kind, margin, prior, uncertainty, **info).to_dict()


def _seen_by_classification(settings: dict) -> dict:
    """What ``settings`` are on a classification task: every ``selection_metric`` is the error rate there, and the
    robust prior is MAE."""
    seen = {k: v for k, v in settings.items() if k != "selection_metric"}
    if seen.get("selection_prior") == "robust":
        seen["selection_prior"] = "mae"
    return seen


def _same_on_classification(name: str, key: str) -> dict | None:
    """On a classification task, a variant whose settings differ from another's only where classification cannot
    tell them apart (``selection_metric``, the robust prior) is that one's run, reused; else None."""
    settings = VARIANTS[name]
    seen = _seen_by_classification(settings)
    if seen == {k: v for k, v in settings.items() if not (k == "selection_metric" and v == "task")}:
        return None  # nothing that classification cannot tell apart
    same = (seen, {**seen, "selection_metric": "task"})
    base = next((n for n, v in VARIANTS.items() if n != name and v in same), None)
    record = saved_selection(base, key) if base else None
    if record is None or not any(r["name"] == "cross-entropy" for r in record["selection"]["rows"]):
        return None
    return _reused(base, record, "saved run (the same selection on classification)")


def saved_selection(name: str, key: str) -> dict | None:
    """The run of variant ``name`` on task ``key`` (``selection`` and ``seconds``), from this ablation or the suite."""
    path = OUT / name / f"{key}.json"
    if path.exists():
        record = read_json(path, ValueError, "selection")
        record.setdefault("seconds", record["selection"]["seconds"])
        return record
    if name in SAVED:
        info = read_json(SUITE / key / "search.json", ValueError, "search summary")
        saved = [info.get("selection"), info.get("selection_alternative"), *info.get("selections_before", [])]
        for chosen in saved:
            if chosen and selection_signature(chosen) == SAVED[name]:
                return {"selection": chosen, "seconds": chosen["seconds"]}
    return None


def judge(result: TaskResult, name: str, record: dict) -> dict:
    """The winner's meta-test error against the best known loss, and the selection's rank agreement."""
    selection = record["selection"]
    # a variant decided from another's saved rows (rows_from) uses that one's learned losses
    own = searched(record.get("rows_from", name), result.key) / "metatest.json"
    # a search variant's learned losses were meta-tested on their own
    rows = with_learned_rows(result.rows, own) if own.parent != SUITE / result.key else dict(result.rows)
    row = rows[selection["winner"]]
    diff, se, verdict = paired_difference(row.early_errors, result.best_known.early_errors)
    means = {r["name"]: r["mean"] for r in selection["rows"] if r["mean"] is not None and r["name"] in rows}
    names = sorted(means)
    best = result.best_known.early_mean
    return {
        "kind": selection["winner_kind"],
        "gap": diff / best if best else 0.0,
        "error": row.early_mean,
        "worse": verdict == "worse",
        "learned_better": verdict == "better" and selection["winner_kind"] == "learned" and result.spec.noisy,
        "noisy": result.spec.noisy,
        "twenty": result.spec.noisy and result.change(row) <= -0.20,
        "oracle": result.spec.noisy
        and any(
            paired_difference(r.early_errors, result.best_known.early_errors)[2] == "better"
            for n, r in rows.items()
            if n.startswith("learned #")
        ),
        "rho": spearman([means[n] for n in names], [rows[n].early_mean for n in names]),
        "seconds": record["seconds"],
    }


def table(keys_by_half: dict[str, list[str]]) -> list[str]:
    lines = [
        "| variant | half | tasks | worse than best known (2 SEs) | noisy tasks >= 20% below the tuned standard | "
        "learned better than best known, noisy tasks | "
        "short list holds a learned loss better than best known, noisy tasks | "
        "mean gap to best known | learned returned | mean Spearman | seconds, mean (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        for which, keys in keys_by_half.items():
            judged = {}
            for key in keys:
                record = saved_selection(name, key)
                if record is not None and (SUITE / key / "metatest.json").exists():
                    judged[key] = judge(TaskResult(SUITE / key), name, record)
            if judged:
                lines.append(_row(name, which, judged))
    return lines


def per_task(keys: list[str]) -> list[str]:
    """Each task's winner under each variant: its meta-test error and its verdict against the best known loss."""
    names = list(VARIANTS)
    lines = ["| task | best known | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key in keys:
        if not (SUITE / key / "metatest.json").exists():
            continue
        result, cells = TaskResult(SUITE / key), []
        for name in names:
            record = saved_selection(name, key)
            if record is None:
                cells.append("-")
                continue
            j = judge(result, name, record)
            mark = " **worse**" if j["worse"] else " **better**" if j["learned_better"] else ""
            cells.append(f"{record['selection']['winner']} {j['error']:.4f}{mark}")
        best = result.best_known
        lines.append(f"| {key} | {best.method} {best.early_mean:.4f} | " + " | ".join(cells) + " |")
    return lines


def _row(name: str, which: str, judged: dict[str, dict]) -> str:
    worse = [k for k, j in judged.items() if j["worse"]]
    better = [k for k, j in judged.items() if j["learned_better"]]
    rhos = [j["rho"] for j in judged.values() if math.isfinite(j["rho"])]
    seconds = [j["seconds"] for j in judged.values()]
    return (
        f"| {name} | {which} | {len(judged)} | {len(worse)}{' (' + ', '.join(worse) + ')' if worse else ''} | "
        f"{sum(j['twenty'] for j in judged.values())} of {sum(j['noisy'] for j in judged.values())} | "
        f"{len(better)}{' (' + ', '.join(better) + ')' if better else ''} | "
        f"{sum(j['oracle'] for j in judged.values())} | "
        f"{100 * sum(j['gap'] for j in judged.values()) / len(judged):+.1f}% | "
        f"{sum(j['kind'] == 'learned' for j in judged.values())} | "
        f"{sum(rhos) / len(rhos) if rhos else math.nan:.2f} | "
        f"{sum(seconds) / len(seconds):.0f} ({max(seconds):.0f}) |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="the variant to run")
    parser.add_argument("--half", default=DEVELOPMENT, help="development, evaluation or all")
    parser.add_argument("--tasks", default=None, help="comma-separated subset of the suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=5, help="meta-test seeds (search variants)")
    parser.add_argument("--steps", type=int, default=1500, help="meta-test steps (search variants)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.variant and not args.report_only:
        keys = args.tasks.split(",") if args.tasks else [t.key for t in half(args.half)]
        run_variant(args.variant, keys, args)
    lines = table({h: [t.key for t in half(h)] for h in (DEVELOPMENT, EVALUATION)})
    lines += ["", *per_task([t.key for t in half("all")])]
    write_table(OUT, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
