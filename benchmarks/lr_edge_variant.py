"""A search variant judged by the extended meta-test (``lr_edge.py``): the fitness's lr grid widened.

``lr_edge.py`` found the known losses' best lr above the old meta-test grid on several tasks (up to 2.7 on
mnist1d), while the default search scores each candidate at lr x {1, 10} (0.01 and 0.1) only: it ranks
candidate losses in an lr regime the fair judge does not use, which favours losses whose gradients are
larger there. ``fitness-lr-100`` scores each candidate at lr x {1, 10, 100} (two initialisations each, as
the default), so its ranking holds up to lr 1.0.

This runs the variant's search and selection (the default's otherwise) on each task, meta-tests its
short list of learned losses with the extended grid and the suite's seeds (the known losses' rows are
``lr_edge.py``'s), and judges its winner against the best known loss there.

The rule, written and committed before this ran: on the development half, judged this way, the variant
replaces the default if it is no worse on the issue's targets in order (tasks worse than the best known
loss, noisy tasks 20% below the tuned standard loss, noisy tasks with a learned loss better than the best
known) than the default judged the same way (``lr_edge.py``'s "extended" row: 0 of 10, 6 of 7, 0 of 7,
+3.9%) and better on one, or tied on all three with a smaller mean gap; and if, timed alone in alternation
with the default on mnist1d-noise20-val (``time_default_search.py``), it takes at most 1.167x the
default's time (the budget rule of ``fixed-scale-100-now``). Otherwise it is not kept.

    python benchmarks/lr_edge_variant.py --tasks digits,digits-pair20     # (skips tasks already run)
    python benchmarks/lr_edge_variant.py --report-only
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ablation_variants import DEFAULT as SELECTION  # noqa: E402
from ablation_variants import GRID_2, ROWS_15  # noqa: E402
from lr_edge import cli, judge  # noqa: E402
from run_results import machine  # noqa: E402
from suite import TASKS  # noqa: E402
from task_results import Comparison, winner_verdict  # noqa: E402

from evomal_sr import LossSearch  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.selection import shortlist_entries  # noqa: E402

NAME = "fitness-lr-100"
SETTINGS = {**SELECTION, **GRID_2, **ROWS_15, "selection_prior": "robust-classes", "fitness_lr_grid": 3}
OUT = ROOT / "results" / "lr_edge" / "variants" / NAME


def run(key: str, args) -> None:
    folder = OUT / key
    if (folder / "record.json").exists():
        print(f"[{NAME}] {key}: done before", flush=True)
        return
    task = TASKS[key].build(args.seed)
    tick, load = time.perf_counter(), machine()
    search = LossSearch(seed=args.seed, out_dir=folder / "search", force=True, verbose=0, **SETTINGS).fit(task)
    seconds = time.perf_counter() - tick
    shortlist = shortlist_entries(search.pareto_front_, search.settings_.selection_shortlist)
    learned = {f"learned #{i + 1}": e.loss(task.kind) for i, e in enumerate(shortlist)}
    report = meta_test(
        learned, task, seeds=args.seeds, steps=args.steps, tune_lr=True, preset="quick", seed=args.seed, verbose=0
    )
    report.to_json(folder / "metatest.json")
    selection = search.selection_.to_dict()
    print(f"[{NAME}] {key}: {seconds:.0f} s, {selection['winner']}", flush=True)
    record = {"selection": selection, "seconds": seconds, "machine": load, "command": " ".join(sys.argv)}
    atomic_write_json(folder / "record.json", record)


def judged(key: str) -> dict:
    """The issue's verdicts on the variant's winner, by the extended meta-test (known rows: ``lr_edge.py``'s, with
    its fallback reruns)."""
    extended = judge(key)
    own = MetaTestReport.load(OUT / key / "metatest.json")
    known = [r for r in extended.methods if not r.method.startswith("learned #")]
    result = Comparison(MetaTestReport(**{**extended.__dict__, "methods": known + own.methods}))
    record = read_json(OUT / key / "record.json", ValueError, "record")
    noisy = TASKS[key].noisy
    return {
        **winner_verdict(result, record["selection"], noisy),
        "winner": record["selection"]["winner"],
        "oracle": noisy and any(result.vs_best_known(r)[2] == "better" for r in own.methods),
        "seconds": record["seconds"],
    }


def report_lines() -> list[str]:
    keys = [k for k in TASKS if (OUT / k / "record.json").exists()]
    lines = [
        f"`{NAME}`, judged by the extended meta-test:",
        "",
        "| task | half | returned | returned vs best known | >= 20% below the standard | learned better | "
        "short list holds a better learned loss | gap | search + selection (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        j = judged(key)
        lines.append(
            f"| {key} | {TASKS[key].half} | {j['winner']} | {'worse' if j['worse'] else '-'} | "
            f"{'yes' if j['twenty'] else '-'} | {'yes' if j['learned'] else '-'} | "
            f"{'yes' if j['oracle'] else '-'} | {j['gap']:+.1%} | {j['seconds']:.0f} |"
        )
    return lines


def main(argv=None) -> int:
    return cli(argv, __doc__, run, OUT, report_lines)


if __name__ == "__main__":
    sys.exit(main())
