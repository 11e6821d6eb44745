"""Does the learned loss that beat every known loss on a fresh probe carry over to related tasks?

On the fresh probe ``digits-seed113-asym30-train`` (digits, 30% class-dependent flips of Patrini et al. in the
training labels) today's default returned a learned loss better than every known loss (0.0213 against SCE's
0.0333, -0.0120 +- 0.0009 over 3 seeds), the first on any fresh probe. This script takes that loss as it is
(the same search, ``LossSearch(seed=0)`` on that task, run again; its description is checked against the saved
one) and meta-tests it, frozen, on the other ten-class probes with class-dependent flips, with each probe's own
protocol (``meta_test(..., tune_lr=True)``, 3 seeds x 3000 steps, the probe's seeds, initialisations and
minibatches), the probe's best known loss trained again beside it as a check that the rows pair with the saved
zoo rows (the same bits, checked). It is compared, paired over seeds, with the best known loss and the tuned
cross-entropy of the probe's saved meta-test (today's judge).

Named before it ran (the tasks, the loss and the comparison), it decides nothing about the default: a loss
that beats the best known loss on most of these tasks is a discovered loss worth a place beside the zoo in a
later round; otherwise the win stays one task's.

    python benchmarks/flip_transfer.py --tasks digits-seed137-asym30-val,mnist1d-seed127-asym30-train  # skips saved
    python benchmarks/flip_transfer.py --report-only
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from fresh_probes import OUT as FRESH_OUT  # noqa: E402
from fresh_probes import probe_task, todays_report  # noqa: E402
from lr_edge import cli  # noqa: E402
from normalised_losses import against_saved, beside_best  # noqa: E402
from task_results import Comparison  # noqa: E402

import evomal_sr as es  # noqa: E402
from evomal_sr.core.fileio import read_json  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.losses.io import describe_loss, load_loss  # noqa: E402

OUT = ROOT / "results" / "flip_transfer"
SOURCE = "digits-seed113-asym30-train"
#: the other ten-class fresh probes with class-dependent flips
TARGETS = (
    "digits-seed137-asym30-val",
    "digits-seed139-asym40-train",
    "mnist1d-seed127-asym30-train",
    "mnist1d-seed131-asym40-train",
    "mnist1d-seed149-asym20-train",
)
NAME = "seed113's learned loss"


def source_loss() -> torch.nn.Module:
    """The loss the default returned on :data:`SOURCE`, found again (saved as ``loss.json`` the first time)."""
    path = OUT / "loss.json"
    if not path.exists():
        search = es.LossSearch(seed=0, verbose=0).fit(probe_task(SOURCE))
        saved = read_json(FRESH_OUT / f"{SOURCE}.json", ValueError, "fresh probe")
        wanted = next(r["loss"] for r in saved["selection"]["rows"] if r["name"] == saved["selection"]["winner"])
        if describe_loss(search.best_loss_) != wanted:
            raise SystemExit(f"the search found {describe_loss(search.best_loss_)}, not the saved {wanted}")
        OUT.mkdir(parents=True, exist_ok=True)
        search.best_loss_.save(path)
    return load_loss(path)


def run_target(name: str, _args=None) -> None:
    if (OUT / name / "metatest.json").exists():
        print(f"[{name}] done before", flush=True)
        return
    task = probe_task(name)
    beside_best({NAME: source_loss()}, task, Comparison(todays_report(name)), name, OUT, seeds=3, steps=3000)


def report_lines() -> list[str]:
    lines = [
        "| probe | best known (lr, error) | tuned cross-entropy | transferred loss: lr | early-stopped error "
        "| vs cross-entropy | vs best known (paired ± se) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in (SOURCE, *TARGETS):
        path = FRESH_OUT / name / "metatest.json" if name == SOURCE else OUT / name / "metatest.json"
        if path.exists():
            row = MetaTestReport.load(path)["returned" if name == SOURCE else NAME]
            where = " (where it was found)" if name == SOURCE else ""
            lines.append(f"| {name}{where} | {against_saved(Comparison(todays_report(name)), row)} |")
    return lines


def main(argv=None) -> int:
    torch.set_num_threads(1)
    return cli(argv, __doc__, run_target, OUT, report_lines)


if __name__ == "__main__":
    raise SystemExit(main())
