"""Would a fixed answer do better than the final selection? Each known loss returned on every task, judged.

The issue's first target asks that the returned loss be never worse than the best known loss (two paired
SEs) on any task. This reads every meta-test saved with today's judge (``lr_extend=4``, the fallback) and
counts, for each known loss, the tasks where returning it always would have been worse than the best known
loss there, beside today's default (its final selection) where its returned loss is known:

- the suite's 20 tasks (``lr_edge.py``'s meta-tests; the default's winner as the report's headline reads it,
  ``lr_edge.TodayResult``);
- the regression development probes and fresh regression probes of ``regression_prior.py`` and
  ``regression_scoring.py`` (today's default's winner: ``adaptive_huber.py``'s ``prior`` selection, the default
  since the sixteenth session, else ``regression_metric.py``'s ``metric-mae``; a task neither reselected counts
  for the fixed answers only), each judged by the zoo with ``adaptive-huber`` where its row was meta-tested;
- the development and fresh probes with label shift of ``label_shift_prior.py`` (today's default's winner: its
  ``shift`` selection);
- the other fresh classification probes (``fresh_probes.py``; ``metatest-now.json`` where the probe was judged
  again); today's default's winner only for the probes run with it (the twelfth session's and later; earlier
  probes ran earlier defaults and count for the fixed answers only).

Tasks are grouped as the selection's prior is: regression, classification with up to five classes, more
than five. It trains nothing and decides nothing.

    python benchmarks/fixed_answers.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from fresh_probes import FRESH, todays_report  # noqa: E402
from fresh_probes import OUT as FRESH_OUT  # noqa: E402
from fresh_tasks import SYNTHETIC, probe_task  # noqa: E402
from label_shift_prior import OUT as SHIFT_OUT  # noqa: E402
from lr_edge import REGRESSION, TodayResult, with_added_loss  # noqa: E402
from lr_edge import TODAY_ZOO as ZOO_OUT  # noqa: E402
from probe_tasks import PROBE_TASKS  # noqa: E402
from regression_metric import OUT as METRIC_OUT  # noqa: E402
from regression_prior import OUT as PRIOR_OUT  # noqa: E402
from regression_scoring import OUT as SCORING_OUT  # noqa: E402
from suite import CLASSES, TASKS  # noqa: E402
from task_results import Comparison, write_table  # noqa: E402

from evomal_sr.core.fileio import read_json  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.verdict import MANY_CLASSES  # noqa: E402
from evomal_sr.losses.zoo import KNOWN_LOSSES  # noqa: E402

OUT = ROOT / "results" / "fixed_answers"
#: the first fresh probe run with today's default (MAE the regression prior, twelfth session); later ones too
FIRST_OF_TODAY = "friedman1-seed37-outliers30"
#: the first regression probe run with today's regression selection (adaptive-huber the prior, sixteenth session;
#: earlier probes saved no front to select again, so they count for the fixed answers only)
FIRST_OF_TODAY_REGRESSION = "diabetes-seed337-outliers25"


def group(dataset: str) -> str:
    if dataset in REGRESSION:
        return "regression"
    many = CLASSES[dataset] > MANY_CLASSES  # the selection prior's groups
    return "classification, more than five classes" if many else "classification, up to five"


def shift_task_dataset(key: str) -> str:
    """The dataset of a task of ``label_shift_prior.py`` (a development probe or a fresh probe)."""
    return PROBE_TASKS[key].dataset if key in PROBE_TASKS else FRESH[key]["name"]


def judged_tasks() -> dict[str, tuple[str, Comparison, str | None]]:
    """Task -> (group, today's judge, today's default's returned loss or None)."""
    tasks: dict[str, tuple[str, Comparison, str | None]] = {}
    for key, spec in TASKS.items():
        if (ROOT / "results" / "lr_edge" / key / "metatest.json").exists():
            today = TodayResult(key)  # a Comparison whose judge holds the zoo's added loss
            tasks[key] = (group(spec.dataset), today, today.returned.method)
    for folder in sorted([*PRIOR_OUT.glob("*/metatest.json"), *SCORING_OUT.glob("*/metatest.json")]):
        key = folder.parent.name  # regression: today's selection (adaptive_huber.py's prior) where it ran
        today = (ZOO_OUT / key / "prior.json", METRIC_OUT / key / "metric-mae.json")  # the first saved
        chosen = next((f for f in today if f.exists()), None)
        winner = read_json(chosen, ValueError, "selection")["selection"]["winner"] if chosen else None
        report = with_added_loss(MetaTestReport.load(folder), key)
        tasks.setdefault(key, ("regression", Comparison(report), winner))
    for folder in sorted(SHIFT_OUT.glob("*/metatest.json")):  # label shift: development and fresh probes
        key, dataset = folder.parent.name, shift_task_dataset(folder.parent.name)
        winner = read_json(folder.parent / "shift.json", ValueError, "selection")["selection"]["winner"]
        tasks.setdefault(key, (group(dataset), Comparison(MetaTestReport.load(folder)), winner))
    names = list(FRESH)
    for name in FRESH:
        report = None if name in tasks else todays_report(name)
        if report is None:
            continue
        kind = probe_group(name)
        first = FIRST_OF_TODAY_REGRESSION if kind == "regression" else FIRST_OF_TODAY
        today = names.index(name) >= names.index(first)
        winner = read_json(FRESH_OUT / f"{name}.json", ValueError, "fresh probe")["selection"]["winner"]
        returned = winner if winner in {r.method for r in report.methods} else "returned"  # a learned loss's row
        tasks[name] = (kind, Comparison(with_added_loss(report, name)), returned if today else None)
    return tasks


def probe_group(name: str) -> str:
    """The group of fresh probe ``name``: by its dataset, or for synthetic data by its task's kind and classes."""
    dataset = FRESH[name]["name"]
    if dataset not in SYNTHETIC:
        return group(dataset)
    task = probe_task(name)
    if task.kind == "regression":
        return "regression"
    return "classification, more than five classes" if task.n_outputs > MANY_CLASSES else "classification, up to five"


def tally(among: dict, rows: dict, named: bool = False) -> str:
    """``worse | mean gap`` of ``rows`` (task -> meta-test row) against each task's best known loss (``named``:
    the tasks where it is worse, too)."""
    judged = {k: among[k][0].vs_best_known(row) for k, row in rows.items()}
    worse = [k for k, (_, _, verdict) in judged.items() if verdict == "worse"]
    best = {k: among[k][0].best_known.early_mean for k in judged}
    gaps = [diff / best[k] for k, (diff, _, _) in judged.items() if best[k]]  # a best of 0 has no relative gap
    which = f" ({', '.join(worse)})" if named and worse else ""
    return f"{len(worse)} of {len(judged)}{which} | {sum(gaps) / len(gaps) if gaps else 0.0:+.1%}"


def report_lines() -> list[str]:
    tasks = judged_tasks()
    lines = [
        "| tasks | answer | worse than the best known (2 SEs), every task | mean gap | worse, on the tasks "
        "today's default was judged on | mean gap |",
        "|---|---|---|---|---|---|",
    ]
    for which in sorted({g for g, _, _ in tasks.values()}, key=lambda g: (g != "regression", g)):
        among = {k: (c, r) for k, (g, c, r) in tasks.items() if g == which}
        kind = "regression" if which == "regression" else "classification"
        today = [k for k, (_, r) in among.items() if r]
        for name in [*KNOWN_LOSSES[kind], "today's default"]:
            if name == "today's default":
                rows = {k: among[k][0].rows[among[k][1]] for k in today}
                lines.append(f"| {which} | **today's default** | - | - | {tally(among, rows, named=True)} |")
                continue
            every = {k: c.rows[name] for k, (c, _) in among.items() if name in c.rows}
            lines.append(f"| {which} | {name} | {tally(among, every)} | {tally(among, {k: every[k] for k in today})} |")
    return lines


def main() -> int:
    write_table(OUT, report_lines())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
