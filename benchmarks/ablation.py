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
from ablation_variants import VARIANTS  # noqa: E402
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
    ``margin-2`` ran with (one paired SE) and the scoring every variant ran with (``"validation"``; the preset's
    is ``"auto-regression"`` since the fourteenth session) where it sets none, so that each means what it meant
    when it ran."""
    return {"selection_margin": 1.0, "selection_scoring": "validation", **VARIANTS[name]}


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
