"""Which final-selection settings predict the fair meta-test? An ablation on the saved suite runs.

The suite's meta-test (``run_results.py``) already holds every loss any final selection can
return (the front's best three and every known loss), each with its early-stopped test error
per seed. So a selection variant is judged without a new meta-test: rerun the selection with
the variant's settings on the saved front (the training and validation rows only), then look up
its winner's meta-test errors. Reported per variant and half: on how many tasks the winner is
worse than the best known loss (two paired standard errors), its mean gap to the best known
loss, how often a learned loss is returned, the rank agreement (Spearman) with the fair test,
and the selection's time.

Usage::

    python benchmarks/selection_ablation.py --variant steps1500 --half development
    python benchmarks/selection_ablation.py --report-only   # the table, from saved files

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
from results_report import TaskResult, spearman  # noqa: E402
from run_results import machine  # noqa: E402
from suite import DEVELOPMENT, EVALUATION, TASKS, half  # noqa: E402

from evomal_sr.core.fileio import atomic_write_json, atomic_write_text, read_json  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.evaluation.report import paired_difference  # noqa: E402
from evomal_sr.evaluation.selection import select_with_settings  # noqa: E402
from evomal_sr.results.front import load_front  # noqa: E402

SUITE = ROOT / "results" / "suite"
OUT = ROOT / "results" / "selection_ablation"

#: Each variant: overrides of the ``standard`` preset's ``selection_*`` settings.
VARIANTS: dict[str, dict] = {
    "validation-600": {"selection_scoring": "validation", "selection_steps": 600},
    "folds-600": {"selection_scoring": "folds", "selection_steps": 600},
    "validation-1500": {"selection_scoring": "validation", "selection_steps": 1500},
    "folds-1500": {"selection_scoring": "folds", "selection_steps": 1500},
    "folds5-1500": {"selection_scoring": "folds", "selection_steps": 1500, "selection_folds": 5},
}
#: The variants the suite run itself saved (``search.json``'s selection and its alternative).
SAVED = {"validation-600": "validation", "folds-600": "folds"}


def run_variant(name: str, keys: list[str], seed: int) -> None:
    settings = resolve_preset("standard", **VARIANTS[name])
    for key in keys:
        target = OUT / name / f"{key}.json"
        if target.exists():
            print(f"[{name}] {key}: done before", flush=True)
            continue
        task = TASKS[key].build(seed)
        front = load_front(SUITE / key / "search" / "pareto.json")
        tick = time.perf_counter()
        result = select_with_settings(front, task, settings, seed=seed, verbose=0)
        print(f"[{name}] {key}: {time.perf_counter() - tick:.0f} s\n{result}", flush=True)
        atomic_write_json(target, {"selection": result.to_dict(), "machine": machine(), "command": " ".join(sys.argv)})


def saved_selection(name: str, key: str) -> dict | None:
    """The selection of variant ``name`` on task ``key``, from this ablation's files or the suite's own."""
    path = OUT / name / f"{key}.json"
    if path.exists():
        return read_json(path, ValueError, "selection")["selection"]
    if name in SAVED:
        info = read_json(SUITE / key / "search.json", ValueError, "search summary")
        for which in ("selection", "selection_alternative"):
            chosen = info.get(which)
            if chosen and chosen.get("scoring", "folds") == SAVED[name]:
                return chosen
    return None


def judge(result: TaskResult, selection: dict) -> dict:
    """The winner's meta-test error against the best known loss, and the selection's rank agreement."""
    row = result.rows[selection["winner"]]
    diff, se, verdict = paired_difference(row.early_errors, result.best_known.early_errors)
    means = {r["name"]: r["mean"] for r in selection["rows"] if r["mean"] is not None and r["name"] in result.rows}
    names = sorted(means)
    rho = spearman([means[n] for n in names], [result.rows[n].early_mean for n in names])
    return {
        "winner": selection["winner"],
        "kind": selection["winner_kind"],
        "error": row.early_mean,
        "gap": diff / result.best_known.early_mean if result.best_known.early_mean else 0.0,
        "worse": verdict == "worse",
        "diff": diff,
        "se": se,
        "rho": rho,
        "seconds": selection["seconds"],
    }


def table(keys_by_half: dict[str, list[str]]) -> list[str]:
    lines = [
        "| variant | half | tasks | worse than best known (2 SEs) | mean gap to best known | learned returned | "
        "mean Spearman | selection s (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        for which, keys in keys_by_half.items():
            judged = {}
            for key in keys:
                selection = saved_selection(name, key)
                if selection is not None and (SUITE / key / "metatest.json").exists():
                    judged[key] = judge(TaskResult(SUITE / key), selection)
            if not judged:
                continue
            worse = [k for k, j in judged.items() if j["worse"]]
            rhos = [j["rho"] for j in judged.values() if math.isfinite(j["rho"])]
            lines.append(
                f"| {name} | {which} | {len(judged)} | {len(worse)}{' (' + ', '.join(worse) + ')' if worse else ''} | "
                f"{100 * sum(j['gap'] for j in judged.values()) / len(judged):+.1f}% | "
                f"{sum(j['kind'] == 'learned' for j in judged.values())} | "
                f"{sum(rhos) / len(rhos) if rhos else math.nan:.2f} | "
                f"{sum(j['seconds'] for j in judged.values()) / len(judged):.0f} "
                f"({max(j['seconds'] for j in judged.values()):.0f}) |"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="the variant to run")
    parser.add_argument("--half", default=DEVELOPMENT, help="development, evaluation or all")
    parser.add_argument("--tasks", default=None, help="comma-separated subset of the suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.variant and not args.report_only:
        keys = args.tasks.split(",") if args.tasks else [t.key for t in half(args.half)]
        run_variant(args.variant, keys, args.seed)
    lines = table({h: [t.key for t in half(h)] for h in (DEVELOPMENT, EVALUATION)})
    atomic_write_text(OUT / "TABLE.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
