"""Fresh probes of the default search: tasks outside the suite and the development probes, as a user meets them.

Each probe is a task chosen after the default it checks was fixed, run once: ``LossSearch(seed=0).fit(task)``
(the default search with its final selection), then ``meta_test({"returned": search.best_loss_}, task,
tune_lr=True, baselines="zoo", seeds=3, steps=3000)``, the returned loss against every known loss of the
task's kind, each at its own tuned lr, early-stopped. This is how the issue's check judges the default
("fresh default searches on further tasks ... against the zoo"). A probe decides nothing: it reports.

The first seven (``wine-seed7-pair30`` to ``digits-seed5-pair30``) were run by hand in earlier sessions, with
these calls, and are reported in ``results_prose.md``; this script reruns any probe not yet saved under
``results/fresh/``.

Usage::

    python benchmarks/fresh_probes.py --probes mnist1d-seed3-pair20,friedman1-seed7-outliers20
    python benchmarks/fresh_probes.py --rejudge                 # the saved probes, judged by today's meta-test
    python benchmarks/fresh_probes.py --report-only

``--rejudge`` meta-tests the zoo again on every saved probe whose meta-test ran with the lr grid as given
(``lr_extend`` 0) or without the fallback, with ``meta_test``'s defaults now (``lr_extend=4``,
``lr_fallback=True``), the probe's seeds and steps, and writes ``<probe>/metatest-now.json``. Every probe
returned a known loss, so the returned loss's row is its zoo row. A row whose grid was not extended and
that did not fall back must equal its saved row bit for bit (checked). It decides nothing.
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
from fresh_tasks import FRESH, probe_task  # noqa: E402
from lr_edge import fall_back_now  # noqa: E402
from run_results import machine  # noqa: E402
from task_results import Comparison, same_run, write_table  # noqa: E402

import evomal_sr as es  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.evaluation.metatest import LR_FACTORS, meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.selection import returned_loss, select_with_settings  # noqa: E402

OUT = ROOT / "results" / "fresh"
#: the lr grid every probe's meta-test was given (``meta_test``'s default with the ``quick`` preset's lr)
QUICK_GRID = [resolve_preset("quick").lr * factor for factor in LR_FACTORS]


def run_probe(name: str) -> None:
    target = OUT / f"{name}.json"
    if target.exists():
        print(f"{name}: done before", flush=True)
        return
    start = machine()
    task, search, seconds = default_search(name)
    report = meta_test(
        {"returned": search.best_loss_}, task, tune_lr=True, baselines="zoo", seeds=3, steps=3000, verbose=0
    )
    report.to_json(OUT / name / "metatest.json")
    print(f"{name}: search + selection {seconds:.0f} s\n{search.selection_}\n{report}", flush=True)
    record = {"selection": search.selection_.to_dict(), "seconds": seconds, "machine": start}
    atomic_write_json(target, {**record, "command": " ".join(sys.argv)})


def default_search(name: str):
    """Probe ``name``'s task and the default search on it (``LossSearch(seed=0)``, with its final selection),
    timed: ``(task, search, seconds)``."""
    task = probe_task(name)
    tick = time.perf_counter()
    search = es.LossSearch(seed=0, verbose=0).fit(task)
    return task, search, time.perf_counter() - tick


def reselect_probe(name: str, settings: dict, ran_with: str, folder: Path) -> dict[str, dict]:
    """Probe ``name``'s default search run again without its selection (a probe saves no front), its front
    selected with each of ``settings`` (variant -> ``Preset``) -> variant -> saved selection. The one named
    ``ran_with`` must repeat the probe's saved selection fold for fold (else the script stops); learned winners
    are meta-tested into ``folder`` (:func:`judge_learned_winners`)."""
    task = probe_task(name)
    front = es.LossSearch(seed=0, verbose=0, final_selection="none").fit(task).pareto_front_
    selections = {v: select_with_settings(front, task, s, seed=0, verbose=0).to_dict() for v, s in settings.items()}
    saved = read_json(OUT / f"{name}.json", ValueError, "fresh probe")["selection"]
    if [r["errors"] for r in saved["rows"]] != [r["errors"] for r in selections[ran_with]["rows"]]:
        raise SystemExit(f"{name}: the search and its {ran_with} selection did not repeat the probe's")
    judge_learned_winners(task, front, selections, folder)
    return selections


def judge_learned_winners(task, front, selections: dict[str, dict], folder: Path) -> None:
    """Meta-test each learned winner of ``selections`` (variant -> saved selection) with the probes' seeds and
    steps into ``folder/metatest-<variant>.json``: a probe's saved meta-test holds the known losses only."""
    for variant, chosen in selections.items():
        if chosen["winner_kind"] == "learned":
            options = dict(tune_lr=True, baseline=False, seeds=3, steps=3000, verbose=0)
            report = meta_test({chosen["winner"]: returned_loss(front, chosen)}, task, **options)
            report.to_json(folder / f"metatest-{variant}.json")


def winner_row(test: Comparison, chosen: dict, folder: Path, variant: str):
    """Variant ``variant``'s winner ``chosen`` as a meta-test row: the probe's zoo row, or the learned winner's
    own (:func:`judge_learned_winners`), comparable seed for seed."""
    if chosen["winner_kind"] == "learned":
        return MetaTestReport.load(folder / f"metatest-{variant}.json").methods[0]
    return test.rows[chosen["winner"]]


def rejudge(name: str) -> None:
    """Probe ``name``'s zoo meta-tested again with today's defaults (``lr_extend``, ``lr_fallback``): where its
    meta-test ran with the grid as given or without the fallback, or has a row today's fallback would move
    (``lr_edge.fall_back_now``: since the fourteenth session a collapsed final run falls back too)."""
    now, collapse = OUT / name / "metatest-now.json", OUT / name / "metatest-collapse.json"
    saved = MetaTestReport.load(now if now.exists() else OUT / name / "metatest.json")  # the latest judged
    record = read_json(OUT / f"{name}.json", ValueError, "fresh probe")
    todays = bool(saved.lr_extend and saved.lr_fallback)
    if collapse.exists() or (todays and not fall_back_now(saved)) or record["selection"]["winner_kind"] != "known":
        return
    target = collapse if todays else now
    task = probe_task(name)
    tick = time.perf_counter()
    report = meta_test(None, task, tune_lr=True, baselines="zoo", seeds=3, steps=3000, verbose=0)
    for row in report.methods:
        old = saved[row.method]
        if len(row.lr_grid) == len(old.lr_grid) and not row.lr_fallbacks and not same_run(row, old):
            raise SystemExit(f"{name}: {row.method} was neither extended nor fell back but differs from its saved row")
    report.to_json(target)
    atomic_write_json(OUT / name / "rejudge.json", {"seconds": time.perf_counter() - tick, "machine": machine()})
    print(f"{name}: rejudged in {time.perf_counter() - tick:.0f} s\n{report}", flush=True)


def todays_report(name: str) -> MetaTestReport | None:
    """Probe ``name``'s meta-test by today's judge: its rejudge (``--rejudge``), or its own meta-test where that
    ran with the lr grid extended; None where neither is saved."""
    for later in ("metatest-collapse.json", "metatest-now.json"):
        if (OUT / name / later).exists():
            return MetaTestReport.load(OUT / name / later)
    saved = OUT / name / "metatest.json"
    report = MetaTestReport.load(saved) if saved.exists() else None
    return report if report is not None and report.lr_extend else None


def now_judged(name: str) -> str | None:
    """Probe ``name``'s row by today's meta-test (:func:`todays_report`), else None."""
    report = todays_report(name)
    if report is None:
        return None
    test = Comparison(report)
    winner = read_json(OUT / f"{name}.json", ValueError, "fresh probe")["selection"]["winner"]
    returned, best = test.rows["returned"] if "returned" in test.rows else test.rows[winner], test.best_known
    given = test.report.lr_grid or QUICK_GRID  # files before the report recorded it: every probe ran the default
    extended = sum(1 for r in test.report.methods if not min(given) <= r.lr <= max(given))
    return (
        f"| {name} | {winner} {returned.lr:g} {returned.early_mean:.4f} | {test.base.method} "
        f"{test.base.early_mean:.4f} ({test.change(returned):+.0%}) | {best.method} {best.lr:g} {best.early_mean:.4f} "
        f"| {_against_best(test, returned)} | {extended} |"
    )


def _against_best(test: Comparison, returned) -> str:
    """``returned`` against the best known loss, paired over seeds: difference ± se (verdict, bold unless a tie)."""
    diff, se, verdict = test.vs_best_known(returned)
    return f"{diff:+.4f} ± {se:.4f} ({f'**{verdict}**' if verdict != 'within noise' else verdict})"


def now_table() -> list[str]:
    """Every probe judged by today's meta-test, and a count of those worse than the best known."""
    rows = [line for name in FRESH if (OUT / f"{name}.json").exists() and (line := now_judged(name))]
    worse = [line.split(" | ")[0].removeprefix("| ") for line in rows if "(**worse**)" in line]
    return [
        f"By today's meta-test (lr grid extended past an edge, fallback on divergence or collapse): {len(worse)} of "
        f"{len(rows)} probes return a loss worse than the best known loss ({', '.join(worse) or 'none'}).",
        "",
        "| probe | returned (lr, error) | tuned standard loss (returned vs it) | best known (lr, error) | returned vs "
        "best known (paired ± se) | rows whose lr lies outside the grid as given |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def judged(name: str) -> str:
    """Probe ``name``'s table row: what the default returned and how it fared against the best known loss."""
    record = read_json(OUT / f"{name}.json", ValueError, "fresh probe")
    test = Comparison(MetaTestReport.load(OUT / name / "metatest.json"))
    returned, best, base = test.rows["returned"], test.best_known, test.base
    return (
        f"| {name} | {record['selection']['winner']} | {returned.early_mean:.4f} | {base.method} "
        f"{base.early_mean:.4f} ({test.change(returned):+.0%}) | {best.method} {best.early_mean:.4f} | "
        f"{_against_best(test, returned)} | {record['seconds']:.0f} | {record['machine']['commit']} | "
        f"{test.report.lr_extend} |"
    )


def table() -> list[str]:
    lines = [
        "| probe | returned | its early-stopped error | tuned standard loss | best known | returned vs best "
        "known (paired ± se) | search + selection (s) | commit | the judge's lr extension |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return [*lines, *(judged(name) for name in FRESH if (OUT / f"{name}.json").exists()), "", *now_table()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", default=None, help=f"comma-separated, of {', '.join(FRESH)}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--rejudge", action="store_true", help="the saved probes' zoo by today's meta-test")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.rejudge:
        names = args.probes.split(",") if args.probes else list(FRESH)
        for name in [n for n in names if (OUT / f"{n}.json").exists()]:
            rejudge(name)
    elif not args.report_only:
        names = args.probes.split(",") if args.probes else list(FRESH)
        unknown = [n for n in names if n not in FRESH]
        if unknown:
            raise SystemExit(f"unknown probe(s) {', '.join(unknown)}; choose from {', '.join(FRESH)}")
        for name in names:
            run_probe(name)
    lines = table()
    write_table(OUT, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
