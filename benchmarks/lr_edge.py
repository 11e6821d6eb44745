"""Does the meta-test's learning-rate grid bind? The default's losses meta-tested again with the grid extended.

The suite's meta-tests (``run_results.py``, ``ablation.py``) chose each method's lr from 0.003-0.3; on
105 of their 228 method rows the chosen lr was the grid's largest, so those methods were not shown to
be tuned. ``meta_test`` now extends a method's grid past such an edge (``lr_extend``, default 4 steps).
This script reruns the meta-test of tasks with the default search's short list of learned losses
(the ``classes-sce`` ablation run's search), every known loss and the ``2 x standard`` control, with the
suite's seeds and steps and the extension, and compares each verdict the report makes with the saved one.
It chooses nothing: the meta-test is the judge, run the same way for every method.

    python benchmarks/lr_edge.py --tasks mnist1d,digits           # run (skips tasks already run)
    python benchmarks/lr_edge.py --report-only                    # the table, from saved files
    python benchmarks/lr_edge.py --fallback                       # rerun where a final run diverged or collapsed

Writes ``benchmarks/results/lr_edge/<task>/metatest.json`` and ``benchmarks/results/lr_edge/TABLE.md``.

``--fallback`` reruns, with ``meta_test``'s ``lr_fallback`` (a method whose final run diverged before its
stopping step trains again at the next smaller lr of its grid), every task whose saved meta-test has a
non-finite early-stopped error, and writes ``metatest-fallback.json`` beside it; the verdicts then use that
file. A task without such an error needs no rerun: the fallback changes nothing there (the saved file is
what the meta-test with the fallback gives). The rows that did not fall back must equal the saved rows
bit for bit (the script checks), so the fallback is the only difference. Since the fourteenth session the
fallback also leaves a final run that collapsed at a stop (its training loss blew up but stayed finite,
``lr_tuning.collapsed``); ``--fallback`` then reruns every task whose latest file has such a row and writes
``metatest-collapse.json``, which the verdicts use first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ablation import OUT as ABLATION  # noqa: E402
from ablation import searched  # noqa: E402
from run_results import CONTROL, STANDARD, ScaledLoss, machine  # noqa: E402
from suite import TASKS  # noqa: E402
from task_results import Comparison, TaskResult, same_run, write_table  # noqa: E402

from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.evaluation.lr_tuning import broke, fallback_lr  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.selection import shortlist_entries  # noqa: E402
from evomal_sr.losses.io import describe_loss  # noqa: E402
from evomal_sr.losses.zoo import known_loss  # noqa: E402
from evomal_sr.results.front import load_front  # noqa: E402

OUT = ROOT / "results" / "lr_edge"
SUITE = ROOT / "results" / "suite"
DEFAULT = "classes-sce"  # the ablation run of the default search (until the twelfth session's regression prior)
TODAY = "extended, today's default (adaptive-huber the regression prior, label smoothing under label shift)"
TODAY_PRIOR = ROOT / "results" / "regression_prior"
TODAY_SHIFT = ROOT / "results" / "label_shift_prior"
TODAY_SCORING = ROOT / "results" / "regression_scoring"
TODAY_METRIC = ROOT / "results" / "regression_metric"
TODAY_ZOO = ROOT / "results" / "adaptive_huber"
REGRESSION = ("diabetes", "friedman1", "sinusoid")
#: a zoo loss added after the saved meta-tests ran (sixteenth session), its rows meta-tested apart
ADDED_LOSS = "adaptive-huber"


def with_added_loss(report: MetaTestReport, key: str) -> MetaTestReport:
    """``report`` with the row of the zoo's added loss (``adaptive_huber.py --rows``, the same seeds and steps)
    where one was meta-tested for task ``key`` and ``report`` lacks it: today's zoo."""
    added = TODAY_ZOO / key / "metatest.json"
    if not added.exists() or ADDED_LOSS in {r.method for r in report.methods}:
        return report
    return MetaTestReport(**{**report.__dict__, "methods": [*report.methods, MetaTestReport.load(added)[ADDED_LOSS]]})


def default_front(key: str):
    """The front of the default search's run on suite task ``key`` (the ``classes-sce`` ablation run's)."""
    record = read_json(ABLATION / DEFAULT / f"{key}.json", ValueError, "selection")
    return load_front(searched(record.get("rows_from", DEFAULT), key) / "search" / "pareto.json")


def learned_losses(key: str, kind: str) -> dict:
    """The default's short list of learned losses on ``key``, named as its meta-test named them."""
    return {f"learned #{i + 1}": e.loss(kind) for i, e in enumerate(shortlist_entries(default_front(key), 3))}


def run(key: str, args) -> None:
    target = OUT / key / "metatest.json"
    if target.exists():
        print(f"[{key}] already run: {target}", flush=True)
        return
    spec = TASKS[key]
    task = spec.build(args.seed)
    losses = {**learned_losses(key, task.kind), CONTROL: ScaledLoss(known_loss(STANDARD[task.kind], task.kind))}
    old = TaskResult(SUITE / key, ABLATION / DEFAULT)
    for name, loss in losses.items():  # the same losses as the saved rows (their descriptions agree)
        if name.startswith("learned #") and describe_loss(loss) != old.rows[name].loss:
            raise SystemExit(f"{key}: {name} is not the saved {name}: {describe_loss(loss)} != {old.rows[name].loss}")
    print(f"[{key}] {spec.title}", flush=True)
    tick, load = time.perf_counter(), machine()
    report = meta_test(
        losses, task, seeds=args.seeds, steps=args.steps, baselines="zoo", tune_lr=True, preset="quick", seed=args.seed
    )
    print(f"  {time.perf_counter() - tick:.0f} s\n{report}", flush=True)
    report.to_json(target)
    atomic_write_json(OUT / key / "run.json", {"command": " ".join(sys.argv), "machine": load})


def judge(key: str) -> MetaTestReport:
    """The extended meta-test of ``key``: with the fallback where one was rerun (``--fallback``), the latest
    rerun first (``metatest-collapse.json``: today's fallback, which also leaves a collapsed final run)."""
    for name in ("metatest-collapse.json", "metatest-fallback.json", "metatest.json"):
        if (OUT / key / name).exists():
            return MetaTestReport.load(OUT / key / name)
    raise FileNotFoundError(OUT / key / "metatest.json")


def fall_back_now(report: MetaTestReport) -> list[str]:
    """The methods of ``report`` that today's fallback (``lr_tuning.broke``) would move to a smaller lr of their
    grid. Reports saved before the collapse rule (the fourteenth session) may hold some."""

    def moves(row) -> bool:
        stops = [row.curve_steps.index(stop) for stop in row.stop_steps]
        return fallback_lr(row.lr_grid, row.lr) is not None and broke(row.early_errors, row.loss_curves, stops)

    return [r.method for r in report.methods if moves(r)]


def rerun_with_fallback(key: str, args) -> None:
    """``key``'s meta-test again, with today's fallback, where the saved one has a row it would move."""
    saved = MetaTestReport.load(OUT / key / "metatest.json")
    target = OUT / key / "metatest-fallback.json"
    if target.exists():
        saved = MetaTestReport.load(target)
        target = OUT / key / "metatest-collapse.json"
    if not fall_back_now(saved) or target.exists():
        return
    print(f"[{key}] diverged or collapsed at a stop: {', '.join(fall_back_now(saved))}; rerun", flush=True)
    spec = TASKS[key]
    task = spec.build(args.seed)
    losses = {**learned_losses(key, task.kind), CONTROL: ScaledLoss(known_loss(STANDARD[task.kind], task.kind))}
    report = meta_test(
        losses, task, seeds=args.seeds, steps=args.steps, baselines="zoo", tune_lr=True, preset="quick", seed=args.seed
    )
    for row in report.methods:
        if not row.lr_fallbacks and not same_run(row, saved[row.method]):
            raise SystemExit(f"{key}: {row.method} did not fall back but differs from its saved row")
    print(f"{report}", flush=True)
    report.to_json(target)


def task_lines(key: str) -> list[str]:
    old = TaskResult(SUITE / key, ABLATION / DEFAULT)
    new = Comparison(judge(key))
    winner = old.info["selection"]["winner"]
    lines = []
    for label, result, returned in (("saved", old, old.returned), ("extended", new, new.rows[winner])):
        diff, se, verdict = result.vs_best_known(returned)
        learned = [
            n for n, r in result.rows.items() if n.startswith("learned #") and result.vs_best_known(r)[2] == "better"
        ]
        top = sum(1 for r in result.rows.values() if r.lr >= max(r.lr_grid) * (1 - 1e-9))  # at its grid's top
        lines.append(
            f"| {key} | {label} | {top} of {len(result.rows)} | {result.base.method} {result.base.lr:g} "
            f"{result.base.early_mean:.4f} | {result.best_known.method} {result.best_known.lr:g} "
            f"{result.best_known.early_mean:.4f} | {winner} {returned.lr:g} {returned.early_mean:.4f} "
            f"({result.change(returned):+.0%}) | {diff:+.4f} ± {se:.4f} ({verdict}) | {', '.join(learned) or '-'} |"
        )
    return lines


class TodayResult(Comparison):
    """Today's default on suite task ``key``, judged by today's meta-test (:func:`judge`): the report's headline.

    Its returned loss is the ``classes-sce`` ablation run's winner, or that run's front selected again with
    today's settings where they differ on the task: MAE the regression prior (``regression_prior.py``) with
    each fold's lr and stopping step chosen on validation rows (``regression_scoring.py``) by MAE
    (``regression_metric.py``) with ``adaptive-huber`` in the zoo and the prior (``adaptive_huber.py``), label smoothing
    under label shift (``label_shift_prior.py``); its seconds are that run's search and that selection's
    (``info`` as :class:`TaskResult` has it, for the report's tables).
    """

    def __init__(self, key: str):
        super().__init__(with_added_loss(judge(key), key))
        old = TaskResult(SUITE / key, ABLATION / DEFAULT)
        chosen, seconds = old.info["selection"], old.info["search_seconds"]
        today = (
            TODAY_PRIOR / key / "mae.json",
            TODAY_SCORING / key / "validation-folds.json",
            TODAY_METRIC / key / "metric-mae.json",
            TODAY_ZOO / key / "prior.json",
            TODAY_SHIFT / key / "shift.json",
        )
        for reselected in today:  # the latest change last
            if not reselected.exists():
                continue
            new = read_json(reselected, ValueError, "selection")["selection"]
            chosen, seconds = new, old.info["search_seconds"] - old.info["selection"]["seconds"] + new["seconds"]
        self.key, self.spec = key, TASKS[key]
        self.returned, self.returned_kind = self.rows[chosen["winner"]], chosen["winner_kind"]
        self.info = {"search_seconds": seconds, "selection": chosen}


def _judged(key: str) -> dict[str, dict]:
    """The issue's verdicts on the default's returned loss, under the saved meta-test and the extended one."""
    old = TaskResult(SUITE / key, ABLATION / DEFAULT)
    new = Comparison(judge(key))
    winner, kind, noisy = old.info["selection"]["winner"], old.returned_kind, TASKS[key].noisy
    cases = [("saved", old, old.returned, kind), ("extended", new, new.rows[winner], kind)]
    reselected = OUT / key / "reselect.json"
    if reselected.exists():  # lr_edge_selection.py: the selection with its grids extended too
        chosen = read_json(reselected, ValueError, "selection")["selection"]
        cases.append(("extended, selection extended", new, new.rows[chosen["winner"]], chosen["winner_kind"]))
    if (TODAY_PRIOR / key / "mae.json").exists() or TASKS[key].dataset not in REGRESSION:
        today = TodayResult(key)  # a classifier's selection is the same today, but under label shift
        cases.append((TODAY, today, today.returned, today.returned_kind))
    judged = {}
    for label, result, returned, returned_kind in cases:
        diff, _, verdict = result.vs_best_known(returned)
        best = result.best_known.early_mean
        rows = [r for name, r in result.rows.items() if name != CONTROL]  # what the meta-test trained, less the control
        judged[label] = {
            "worse": verdict == "worse",
            "twenty": noisy and result.change(returned) <= -0.20,
            "reachable": noisy and min(result.change(r) for r in rows) <= -0.20,
            "learned_better": noisy and returned_kind == "learned" and verdict == "better",
            "noisy": noisy,
            "gap": diff / best if best else 0.0,
            "winner": returned.method,
        }
    return judged


def _named(rows: dict[str, dict], flag: str, among: list[str]) -> str:
    """How many of ``among`` have ``flag`` set, and which."""
    hits = [k for k in among if rows[k][flag]]
    return f"{len(hits)}" + (f" ({', '.join(hits)})" if hits else "")


def target_lines(keys: list[str]) -> list[str]:
    """The issue's three quality targets for the default, per half and grid, over the tasks rerun so far."""
    lines = [
        "| half | meta-test grid | tasks | worse than the best known (2 SEs) | noisy tasks >= 20% below the tuned "
        "standard | noisy tasks where some meta-tested loss is >= 20% below it | learned better than the best "
        "known, noisy tasks | mean gap to the best known |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for which in ("development", "evaluation"):
        judged = {k: _judged(k) for k in keys if TASKS[k].half == which}
        for label in ("saved", "extended", "extended, selection extended", TODAY):
            rows = {k: j[label] for k, j in judged.items() if label in j}
            if not rows:
                continue
            noisy = [k for k, r in rows.items() if r["noisy"]]
            twenty, reachable = sum(rows[k]["twenty"] for k in noisy), sum(rows[k]["reachable"] for k in noisy)
            gap = sum(r["gap"] for r in rows.values()) / len(rows)
            lines.append(
                f"| {which} | {label} | {len(rows)} | {_named(rows, 'worse', list(rows))} | "
                f"{twenty} of {len(noisy)} | {reachable} of {len(noisy)} | {_named(rows, 'learned_better', noisy)} of "
                f"{len(noisy)} | {gap:+.1%} |"
            )
    return lines


def report_lines() -> list[str]:
    keys = [k for k in TASKS if (OUT / k / "metatest.json").exists()]
    lines = [
        *target_lines(keys),
        "",
        "| task | grid | methods at their grid's largest lr | tuned standard (lr, error) | best known (lr, error) | "
        "the default's returned loss (lr, error, vs standard) | returned vs best known | learned better than "
        "best known |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        lines += task_lines(key)
    return lines


def cli(argv, doc: str, run_task, out: Path, lines, rerun=None) -> int:
    """The command line of a script that runs tasks (``run_task(key, args)``) and writes ``lines()`` to ``out``;
    with ``rerun``, ``--fallback`` calls ``rerun(key, args)`` on every task run so far instead."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--tasks", default="")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true")
    if rerun is not None:
        parser.add_argument("--fallback", action="store_true", help="rerun with lr_fallback where a run diverged")
    args = parser.parse_args(argv)
    if rerun is not None and args.fallback:
        for key in [k for k in TASKS if (OUT / k / "metatest.json").exists()]:
            rerun(key, args)
    elif not args.report_only:
        for key in [k for k in args.tasks.split(",") if k]:
            run_task(key, args)
    write_table(out, lines())
    return 0


def main(argv=None) -> int:
    return cli(argv, __doc__, run, OUT, report_lines, rerun_with_fallback)


if __name__ == "__main__":
    sys.exit(main())
