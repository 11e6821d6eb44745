"""The report's per-task verdict table and the issue's targets, shared by its sections (``results_report.py``)."""

from __future__ import annotations

import math
from pathlib import Path

from task_results import TaskResult

from evomal_sr.core.fileio import read_json

BUDGET_SECONDS = 300.0


def fmt(value, digits: int = 4) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else "inf"
        if not math.isfinite(value)
        else f"{value:.{digits}f}"
    )


def verdict_table(results: list[TaskResult]) -> list[str]:
    lines = [
        "| task | returned (kind) | early-stopped error | tuned standard | change | best known | returned vs best "
        "known (paired ± se) | search + selection (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in results:
        diff, se, verdict = t.vs_best_known(t.returned)
        lines.append(
            f"| {t.spec.title} | {t.returned.method} ({t.returned_kind}) | {fmt(t.returned.early_mean)} | "
            f"{fmt(t.base.early_mean)} | {t.change(t.returned):+.0%} | {t.best_known.method} "
            f"{fmt(t.best_known.early_mean)} | {diff:+.4f} ± {fmt(se)} ({verdict}) | "
            f"{t.info['search_seconds']:.0f} ({t.info['selection']['seconds']:.0f}) |"
        )
    return lines + [""]


def idle_seconds(out: Path) -> dict[str, float]:
    path = out / "idle_timing.json"
    if not path.exists():
        return {}
    return {key: v["seconds"] for key, v in read_json(path, ValueError, "idle timing")["tasks"].items()}


def targets_table(
    results: list[TaskResult], idle: dict[str, float], loaded: str = "2-6 benchmark processes sharing the 2 cores"
) -> list[str]:
    noisy = [t for t in results if t.spec.noisy]
    worse = [t.key for t in results if t.vs_best_known(t.returned)[2] == "worse"]
    short = [t.key for t in noisy if t.change(t.returned) > -0.20]
    learned_wins = [t.key for t in noisy if t.returned_kind == "learned" and t.vs_best_known(t.returned)[2] == "better"]
    # timed alone where measured (idle_timing.json); the loaded figures only bound it from above
    alone = {t.key: idle[t.key] for t in results if t.key in idle}
    slow = [key for key, seconds in alone.items() if seconds > BUDGET_SECONDS]
    third = math.ceil(len(noisy) / 3) if noisy else 0
    rows = [
        (
            "never worse than the best known loss beyond two paired SEs, on any task",
            f"worse on {len(worse)} of {len(results)}" + (f" ({', '.join(worse)})" if worse else ""),
            not worse,
        ),
        (
            ">= 20% lower early-stopped error than the tuned standard loss on every noisy task",
            f"met on {len(noisy) - len(short)} of {len(noisy)}" + (f"; not on {', '.join(short)}" if short else ""),
            noisy and not short,
        ),
        (
            "a learned loss strictly better than the best known (2 SEs) on >= 1/3 of the noisy tasks",
            f"{len(learned_wins)} of {len(noisy)} (needs {third})"
            + (f": {', '.join(learned_wins)}" if learned_wins else ""),
            noisy and len(learned_wins) >= third,
        ),
        (
            "default search + selection <= 5 min per task (2 cores)",
            f"timed alone: {', '.join(f'{k} {v:.0f} s' for k, v in alone.items()) or 'no task of this half'}; "
            f"max {max((t.info['search_seconds'] for t in results), default=0):.0f} s with {loaded}"
            + (f"; over on {', '.join(slow)}" if slow else ""),
            bool(alone) and not slow,
        ),
    ]
    lines = ["| target | reached | met |", "|---|---|---|"]
    lines += [f"| {name} | {reached} | {'**yes**' if met else '**no**'} |" for name, reached, met in rows]
    return lines + [""]
