"""More development tasks for the decisions the suite's development half cannot separate.

The suite's development half has ten tasks; two selection rules can tie on every target there and
differ on one task's gap. These probes are further development tasks (new datasets, rates and
noise kinds, seed 0; the evaluation half is not touched), each run once with the default search,
``LossSearch(seed=0)``, whose final selection keeps every short-list loss's fold errors and its
error on each scored row. Every decision rule below is then derived from those same rows (the
rules differ only in the margin and in what the standard error holds), and its winner is looked
up in a meta-test of the short list and the zoo with the suite's protocol
(``meta_test(..., baselines="zoo", tune_lr=True)``, 5 seeds, 1500 steps).

The rule, fixed before the probes ran: over the suite's development half and these probes
together, the issue's targets in order (fewest tasks worse than the best known loss by two paired
SEs; most noisy tasks 20% below the tuned standard loss; most noisy tasks where a learned loss is
better than the best known), then the smaller mean gap to the best known loss; a tie keeps the
default (``margin-2``).

Later rules are judged the same way, each written here before it ran: ``robust-prior`` (each kind's
noise-tolerant prior, ``selection_prior="robust"``: log-cosh in place of MAE on regression tasks) against the
default then, ``rows-margin-1.5``; its selection reruns on the regression probes' saved fronts (``--rerun``).
``classes-sce`` (written before its four ten-class probes ran, after the evaluation half's digits task and a
fresh digits probe had returned MAE where SCE was better; see RESULTS.md): the default (``robust-prior``), but on
a task with more than five classes the prior is SCE, not MAE. MAE's pull on the true class's logit is
cross-entropy's times that class's probability, 1/K at the start, so with many classes it underfits; SCE (which
adds cross-entropy) is the known loss with the lowest test error on three of the suite's four ten-class
development tasks. Its selection reruns on the ten-class tasks of the suite's development half and of the
probes (``--rerun``; ``ablation.py --variant prior-sce``); elsewhere it is ``robust-prior``. The development
tasks have 2, 3 or 10 classes, so any threshold from 4 to 9 decides them alike. Same rule; a tie keeps the
default. (Not kept: a tie on the targets, a wider gap.)
``auto-scoring`` (written before it ran): the default (``robust-prior``), but where the training rows' class
balance differs from the validation rows' (label shift: Pearson's chi-square test of the two splits' class
counts at 1%, ``evaluation.label_shift``) each fold's lr and stopping step are chosen on validation rows
(``selection_scoring="auto"``, which is ``"validation-folds"`` there): the default scoring chooses them on
training rows at the training balance, while the meta-test chooses on the validation rows. The test flags the
three imbalanced development tasks (breast_cancer-imbalance9, wine-imbalance9, digits-imbalance5; p <= 0.004)
and no other development task (p >= 0.31); elsewhere it is ``robust-prior``. Its selection reruns on those
three (``ablation.py --variant auto-scoring``, ``--rerun auto-scoring``). Same rule; a tie keeps the default.

Usage::

    python benchmarks/probe_tasks.py --tasks iris-pair30-val,wine-asym30-val   # run probes
    python benchmarks/probe_tasks.py --report-only                             # the table
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from ablation import judge, label_shifted, many_classes, redecide, saved_selection  # noqa: E402
from run_results import machine  # noqa: E402
from suite import BOTH, DEVELOPMENT, SuiteTask, flips, half, pair, student_t, symmetric  # noqa: E402
from task_results import Comparison, TaskResult, write_table  # noqa: E402

from evomal_sr import LossSearch  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.selection import select_with_settings, shortlist_entries  # noqa: E402
from evomal_sr.results.front import load_front  # noqa: E402

OUT = ROOT / "results" / "probes"
SUITE = ROOT / "results" / "suite"

PROBES: tuple[SuiteTask, ...] = (
    SuiteTask("iris-pair30-val", "iris", DEVELOPMENT, "30% pair noise, train + val", pair(0.3), True),
    SuiteTask(
        "wine-asym30-val",
        "wine",
        DEVELOPMENT,
        "30% asymmetric noise (class 0 -> 1 only), train + val",
        flips(0.3, 3, {0: 1}, BOTH),
        True,
    ),
    SuiteTask(
        "breast_cancer-noise20-val",
        "breast_cancer",
        DEVELOPMENT,
        "20% symmetric noise, train + val",
        symmetric(0.2, BOTH),
        True,
    ),
    SuiteTask("diabetes-outliers20", "diabetes", DEVELOPMENT, "20% outlier targets, train", symmetric(0.2), True),
    SuiteTask(
        "friedman1-t1.5",
        "friedman1",
        DEVELOPMENT,
        "Student-t noise (df 1.5, scale 0.3 std), train + val",
        student_t(0.3, 1.5),
        True,
    ),
    SuiteTask(
        "sinusoid-t3",
        "sinusoid",
        DEVELOPMENT,
        "Student-t noise (df 3, scale 0.5 std), train + val",
        student_t(0.5, 3.0),
        True,
    ),
    SuiteTask("wine-imbalance9", "wine", DEVELOPMENT, "9:1 class imbalance", {"imbalance": 9.0}),
    SuiteTask("iris-noise40-val", "iris", DEVELOPMENT, "40% symmetric noise, train + val", symmetric(0.4, BOTH), True),
    # ten-class tasks, for classes-sce (the suite's development half has four)
    SuiteTask(
        "digits-noise20-val", "digits", DEVELOPMENT, "20% symmetric noise, train + val", symmetric(0.2, BOTH), True
    ),
    SuiteTask("digits-pair30-val", "digits", DEVELOPMENT, "30% pair noise, train + val", pair(0.3), True),
    SuiteTask(
        "mnist1d-noise30-val", "mnist1d", DEVELOPMENT, "30% symmetric noise, train + val", symmetric(0.3, BOTH), True
    ),
    SuiteTask("digits-imbalance5", "digits", DEVELOPMENT, "5:1 class imbalance", {"imbalance": 5.0}),
)
PROBE_TASKS = {t.key: t for t in PROBES}

#: The decision rules compared: name -> (margin in paired SEs, what the SE holds). The first is the default.
DECISIONS = {
    "margin-2": (2.0, "folds"),
    "rows": (1.0, "folds-and-rows"),
    "rows-margin-1.5": (1.5, "folds-and-rows"),
    "rows-margin-2": (2.0, "folds-and-rows"),
    "robust-prior": (1.5, "folds-and-rows"),
    "classes-sce": (1.5, "folds-and-rows"),
    "auto-scoring": (1.5, "folds-and-rows"),
}


def _regression(task) -> bool:
    return task.kind == "regression"


#: Rules whose selection reruns on a probe's saved front (the prior runs every fold): name -> the settings of
#: the ``standard`` preset it changes, which tasks it reruns on, and the rule it is elsewhere (None: the
#: probe's own selection).
RERUNS = {
    "robust-prior": ({"selection_prior": "robust"}, _regression, None),
    "classes-sce": ({"selection_prior": "sce"}, many_classes, "robust-prior"),
    "auto-scoring": ({"selection_scoring": "auto"}, label_shifted, "robust-prior"),
}


def run_probe(spec: SuiteTask, args) -> None:
    target = OUT / f"{spec.key}.json"
    if target.exists():
        print(f"{spec.key}: done before", flush=True)
        return
    task = spec.build(args.seed)
    tick = time.perf_counter()
    search = LossSearch(seed=args.seed, out_dir=OUT / spec.key / "search", force=True, verbose=0).fit(task)
    seconds = time.perf_counter() - tick
    learned = {f"learned #{i + 1}": e.loss(task.kind) for i, e in enumerate(shortlist_entries(search.pareto_front_, 3))}
    report = meta_test(
        learned, task, seeds=args.seeds, steps=args.steps, baselines="zoo", tune_lr=True, preset="quick", seed=args.seed
    )
    report.to_json(OUT / spec.key / "metatest.json")
    print(f"{spec.key}: search + selection {seconds:.0f} s\n{search.selection_}\n{report}", flush=True)
    record = {"selection": search.selection_.to_dict(), "seconds": seconds, "machine": machine()}
    atomic_write_json(target, {**record, "command": " ".join(sys.argv)})


def rerun_probe(spec: SuiteTask, decision: str, args) -> None:
    """The selection of rule ``decision`` (RERUNS) rerun on probe ``spec``'s saved front."""
    changes, reruns_on, _ = RERUNS[decision]
    target = OUT / spec.key / f"{decision}.json"
    task = spec.build(args.seed)
    if target.exists() or not reruns_on(task):
        return
    record = read_json(OUT / f"{spec.key}.json", ValueError, "probe")
    front = load_front(OUT / spec.key / "search" / "pareto.json")
    tick = time.perf_counter()
    settings = resolve_preset("standard", **{"selection_scoring": "validation", **changes})  # the scoring they ran
    result = select_with_settings(front, task, settings, seed=args.seed, verbose=0)
    seconds = time.perf_counter() - tick
    print(f"{spec.key} ({decision}): selection {seconds:.0f} s\n{result}", flush=True)
    search = record["seconds"] - record["selection"]["seconds"]
    rerun = {"selection": result.to_dict(), "seconds": search + seconds, "selection_seconds": seconds}
    atomic_write_json(target, {**rerun, "machine": machine(), "command": " ".join(sys.argv)})


def judge_probe(spec: SuiteTask, decision: str) -> dict:
    """The rule ``decision``'s winner on probe ``spec``, judged as the ablation judges a suite task."""
    record = read_json(_record_path(spec, decision), ValueError, "probe")
    chosen = record["selection"]
    margin, uncertainty = DECISIONS[decision]
    winner = redecide(chosen, margin, chosen["prior"], uncertainty)["winner"]
    return {**judge_winner(spec, winner), "seconds": record["seconds"]}


def judge_winner(spec: SuiteTask, winner: str) -> dict:
    """The loss ``winner`` on probe ``spec``, in its meta-test: against the best known loss and the standard loss."""
    test = Comparison(MetaTestReport.load(OUT / spec.key / "metatest.json"))
    row, best = test.rows[winner], test.best_known
    diff, _, verdict = test.vs_best_known(row)
    return {
        "winner": winner,
        "error": row.early_mean,
        "best": f"{best.method} {best.early_mean:.4f}",
        "worse": verdict == "worse",
        "learned_better": verdict == "better" and winner.startswith("learned #") and spec.noisy,
        "twenty": spec.noisy and test.change(row) <= -0.20,
        "noisy": spec.noisy,
        "gap": diff / best.early_mean if best.early_mean else 0.0,
    }


def _record_path(spec: SuiteTask, decision: str) -> Path:
    """Where rule ``decision``'s selection on probe ``spec`` is saved: its rerun, the rule it is elsewhere, or the
    probe's own."""
    rerun = OUT / spec.key / f"{decision}.json"
    if rerun.exists():
        return rerun
    fallback = RERUNS[decision][2] if decision in RERUNS else None
    return _record_path(spec, fallback) if fallback else OUT / f"{spec.key}.json"


def judge_suite(key: str, decision: str) -> dict | None:
    """The ablation's judgment of the suite's development task ``key`` under the variant named ``decision``."""
    record = saved_selection(decision, key)
    return None if record is None else judge(TaskResult(SUITE / key), decision, record)


def table() -> list[str]:
    done = [t for t in PROBES if (OUT / f"{t.key}.json").exists()]
    lines = [
        "| rule | tasks | worse than best known (2 SEs) | noisy tasks >= 20% below the tuned standard | "
        "learned better than best known, noisy tasks | mean gap to best known |",
        "|---|---|---|---|---|---|",
    ]
    for decision in DECISIONS:
        for label, judged in (
            ("probes", {t.key: judge_probe(t, decision) for t in done}),
            ("suite development half + probes", _combined(decision, done)),
        ):
            worse = [k for k, j in judged.items() if j["worse"]]
            better = [k for k, j in judged.items() if j["learned_better"]]
            noisy = sum(j["noisy"] for j in judged.values())
            gap = 100 * sum(j["gap"] for j in judged.values()) / max(1, len(judged))
            named = [f"{len(ks)}{' (' + ', '.join(ks) + ')' if ks else ''}" for ks in (worse, better)]
            twenty = sum(j["twenty"] for j in judged.values())
            lines.append(
                f"| {decision} ({label}) | {len(judged)} | {named[0]} | {twenty} of {noisy} | {named[1]} | "
                f"{gap:+.1f}% |"
            )
    lines += ["", "| probe | condition | best known | " + " | ".join(DECISIONS) + " | search + selection (s) |"]
    lines.append("|---|---|---|" + "---|" * len(DECISIONS) + "---|")
    for t in done:
        cells = []
        for decision in DECISIONS:
            j = judge_probe(t, decision)
            mark = " **worse**" if j["worse"] else " **better**" if j["learned_better"] else ""
            cells.append(f"{j['winner']} {j['error']:.4f}{mark}")
        lines.append(f"| {t.key} | {t.condition} | {j['best']} | " + " | ".join(cells) + f" | {j['seconds']:.0f} |")
    return lines


def _combined(decision: str, done: list[SuiteTask]) -> dict:
    judged = {t.key: judge_suite(t.key, decision) for t in half(DEVELOPMENT)}
    if any(j is None for j in judged.values()):
        return {}
    return {**judged, **{t.key: judge_probe(t, decision) for t in done}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=None, help=f"comma-separated probes of {', '.join(PROBE_TASKS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=5, help="meta-test seeds")
    parser.add_argument("--steps", type=int, default=1500, help="meta-test steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rerun", choices=sorted(RERUNS), help="rerun the selection of this rule on the probes")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.report_only:
        for key in args.tasks.split(",") if args.tasks else list(PROBE_TASKS):
            run_probe(PROBE_TASKS[key], args)
            if args.rerun:
                rerun_probe(PROBE_TASKS[key], args.rerun, args)
    lines = table()
    write_table(OUT, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
