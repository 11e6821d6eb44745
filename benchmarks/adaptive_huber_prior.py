"""MAE or adaptive-huber as the regression prior, a second look on eight new development tasks.

``adaptive_huber.py`` decided on its fifteen development tasks that ``adaptive-huber`` joins the zoo and MAE
stays the prior (``zoo``): the ``prior`` variant was worse than the best known loss on 3 of them against 2. After
that decision the evaluation half's three regression tasks and eight later fresh probes were selected both ways
and reported: there ``prior`` was worse on 0 of 3 and 1 of 8 against ``zoo``'s 1 and 1, with a mean gap of +0.0%
and +4.4% against +28.4% and +27.5%. That prompted this second look; it is not blind to those eleven tasks, and
they do not count in it.

Eight new regression development tasks (``NEW_DEV``, named and committed before any ran), each: today's default
search without its selection (``LossSearch(seed=0, final_selection="none")``), its short list of three learned
losses and today's zoo meta-tested with the fresh probes' protocol (``meta_test(..., baselines="zoo",
tune_lr=True, seeds=3, steps=3000)``), and both selections (``adaptive_huber.VARIANTS``) of its front.

**The rule, written and committed before the new tasks ran**: over the 23 development tasks (``adaptive_huber.py``'s
fifteen and these eight), ``prior`` replaces ``zoo`` as the default if it is better on the first of these that
differs: fewest tasks worse than the best known loss by two paired SEs; most noisy tasks 20% below the tuned
standard loss; most learned losses better than the best known; the lower mean gap to the best known loss. A tie on
all, or ``prior`` worse, keeps ``zoo``. A change is then checked on fresh regression probes named before they run.

After the change, the eight blind probes of the two defaults (``fresh_probes.py``: four run with ``zoo``, four with
``prior``, each batch named before it ran) compared on the same tasks (``--tasks`` with their names; reported only,
deciding nothing): each probe's default search run again without its selection (its front was not saved), then
both selections of that front; the one its batch ran with must repeat the probe's saved selection, fold for fold.
Each winner is judged by the probe's saved meta-test (its zoo holds ``adaptive-huber``); a learned winner is
meta-tested here with the probe's seeds and steps.

    python benchmarks/adaptive_huber_prior.py --tasks diabetes-seed281-outliers20      # (skips what is saved)
    python benchmarks/adaptive_huber_prior.py --report-only
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from adaptive_huber import VARIANTS  # noqa: E402
from adaptive_huber import verdicts as first_verdicts  # noqa: E402
from fresh_probes import FRESH, reselect_probe, todays_report, winner_row  # noqa: E402
from lr_edge import cli  # noqa: E402
from regression_prior import noisy, select_each  # noqa: E402
from regression_scoring import JUDGED  # noqa: E402
from run_results import machine  # noqa: E402
from suite import DEVELOPMENT, TASKS, student_t, symmetric  # noqa: E402
from task_results import Comparison, row_verdict, variant_lines, winner_verdict  # noqa: E402

import evomal_sr as es  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json, read_json  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.evaluation.metatest import meta_test  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.selection import shortlist_entries  # noqa: E402
from evomal_sr.results.front import load_front  # noqa: E402

OUT = ROOT / "results" / "adaptive_huber_prior"
#: the new development tasks, ``Task.builtin`` keywords (the MLP; seeds outside every earlier task's)
NEW_DEV: dict[str, dict] = {
    "diabetes-seed281-outliers20": {"name": "diabetes", "seed": 281, **symmetric(0.2)},
    "diabetes-seed283-t1.5": {"name": "diabetes", "seed": 283, **student_t(0.4, 1.5)},
    "friedman1-seed293-outliers20": {"name": "friedman1", "seed": 293, **symmetric(0.2)},
    "friedman1-seed307-t2": {"name": "friedman1", "seed": 307, **student_t(0.5, 2.0)},
    "sinusoid-seed311-outliers30": {"name": "sinusoid", "seed": 311, **symmetric(0.3)},
    "sinusoid-seed313-t2": {"name": "sinusoid", "seed": 313, **student_t(0.5, 2.0)},
    "diabetes-seed317-t3-train": {"name": "diabetes", "seed": 317, **student_t(0.5, 3.0, ("train",))},
    "friedman1-seed331-t1.5-train": {"name": "friedman1", "seed": 331, **student_t(0.4, 1.5, ("train",))},
}
#: the sixteenth session's blind probes, by the variant that was the default when each batch ran
BLIND = {
    "zoo": [
        "diabetes-seed257-t2-train",
        "friedman1-seed263-outliers30",
        "sinusoid-seed269-t1.5",
        "friedman1-seed271-t3",
    ],
    "prior": [
        "diabetes-seed337-outliers25",
        "friedman1-seed347-t2-train",
        "sinusoid-seed349-outliers20",
        "diabetes-seed353-t1.5",
    ],
}
BLIND_HALF = "blind probes, after deciding"
FIRST = [k for k in JUDGED if k not in TASKS or TASKS[k].half == DEVELOPMENT]  # adaptive_huber.py's fifteen


def run_task(key: str) -> None:
    run_blind(key) if key in FRESH else run(key)


def run(key: str) -> None:
    """``key``'s search, its meta-test and both selections (each skipped where saved)."""
    task = es.Task.builtin(model="mlp", **NEW_DEV[key])
    folder = OUT / key / "search"
    if not (folder / "pareto.json").exists():
        tick = time.perf_counter()
        es.LossSearch(seed=0, out_dir=folder, force=True, verbose=0, final_selection="none").fit(task)
        atomic_write_json(OUT / key / "search.json", {"seconds": time.perf_counter() - tick, "machine": machine()})
    front = load_front(folder / "pareto.json")
    if not (OUT / key / "metatest.json").exists():
        learned = {f"learned #{i + 1}": e.loss(task.kind) for i, e in enumerate(shortlist_entries(front, 3))}
        options = {"baselines": "zoo", "tune_lr": True, "seeds": 3, "steps": 3000, "verbose": 0}
        meta_test(learned, task, **options).to_json(OUT / key / "metatest.json")
    select_each(key, task, front, VARIANTS, OUT)


def run_blind(name: str) -> None:
    """Blind probe ``name``'s front again and both selections of it; the default it ran with must repeat."""
    target = OUT / "blind" / f"{name}.json"
    if target.exists():
        return
    ran_with = next(variant for variant, names in BLIND.items() if name in names)
    settings = {v: resolve_preset("standard", **changes) for v, changes in VARIANTS.items()}
    selections = reselect_probe(name, settings, ran_with, OUT / "blind" / name)
    atomic_write_json(target, {"selections": selections, "machine": machine()})


def blind_verdicts(name: str, variant: str) -> dict:
    test = Comparison(todays_report(name))
    chosen = read_json(OUT / "blind" / f"{name}.json", ValueError, "selections")["selections"][variant]
    return row_verdict(test, winner_row(test, chosen, OUT / "blind" / name, variant), chosen, True)


def verdicts(key: str, name: str) -> dict:
    if key not in NEW_DEV:
        return first_verdicts(key, name)
    chosen = read_json(OUT / key / f"{name}.json", ValueError, "selection")["selection"]
    return winner_verdict(Comparison(MetaTestReport.load(OUT / key / "metatest.json")), chosen, True)


def report_lines() -> list[str]:
    done = [k for k in NEW_DEV if all((OUT / k / f"{n}.json").exists() for n in VARIANTS)]
    every_noisy = lambda k: k in NEW_DEV or noisy(k)  # noqa: E731  (each new task is noisy)
    lines = variant_lines(
        [*FIRST, *done], list(VARIANTS), verdicts, lambda k: DEVELOPMENT, every_noisy, "prior", halves=(DEVELOPMENT,)
    )
    blind = [n for names in BLIND.values() for n in names if (OUT / "blind" / f"{n}.json").exists()]
    if not blind:
        return lines
    at = (BLIND_HALF,)
    return [
        *lines,
        "",
        *variant_lines(blind, list(VARIANTS), blind_verdicts, lambda k: at[0], lambda k: True, "prior", at),
    ]


def main(argv=None) -> int:
    torch.set_num_threads(1)
    return cli(argv, __doc__, lambda key, _args: run_task(key), OUT, report_lines)


if __name__ == "__main__":
    raise SystemExit(main())
