"""A prior chosen among a task kind's noise-tolerant losses, judged on the development tasks from saved rows.

The default's final selection (``selection_prior="robust"``) falls back on one fixed known loss per task
kind (MAE for classification, log-cosh for regression) unless a known loss beats it by 1.5 paired SEs.
Its failures on unseen tasks are mostly that fixed prior kept where another noise-tolerant loss was far
better: MAE on ten classes (the fresh digits pair-noise probe: MAE 0.1731 against SCE's 0.0602; the
evaluation half's digits-noise30-val), log-cosh where MAE was better (the fresh friedman1 outlier probe).
MAE underfits with many classes (its pull on the true class's logit is cross-entropy's times that
class's probability), which GCE and SCE were designed to fix; log-cosh, Huber and MAE differ in where
they turn linear.

**The rule ``family-prior``**: the prior is the member of the kind's noise-tolerant family with the
lowest mean error on the folds, where the family is MAE, GCE and SCE (classification) or log-cosh,
Huber and MAE (regression); everything else is the default's decision (a learned loss must beat the best
known loss by 1.5 paired SEs of the folds and rows; the best known loss must beat the prior by as much).
Within the family no margin is asked: each member is a safe fallback, and the family's best on the
folds is the smaller risk than a fixed member that may not suit the task.

**How it is judged, written before anything ran** (the probes' rule, ``benchmarks/probe_tasks.py``): over
the 22 development tasks (the suite's development half and the twelve probes), the targets in order
(fewer tasks worse than the best known loss by two paired SEs; then more noisy tasks 20% below the tuned
standard loss; then more learned losses better than the best known), then the mean gap to the best known
loss; a tie keeps the default. The evaluation half is looked at only if it is kept.

**This first pass is derived from saved rows, and so approximate**: the default's selections ran with
successive halving, which runs only the prior on every fold; a family member screened out after two
folds has no five-fold mean and is left out of the family here (it was not among the four best losses
after two folds). If the rule is kept by this pass, the package gets it with every family member run on
every fold, and the development half is rerun exactly before the rule is judged again.

    python benchmarks/family_prior.py            # the table, from saved files (no training)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ablation import judge, redecide, saved_selection  # noqa: E402
from probe_tasks import PROBES, SUITE, _record_path, judge_winner  # noqa: E402
from suite import DEVELOPMENT, half  # noqa: E402
from task_results import TaskResult  # noqa: E402

from evomal_sr.core.fileio import read_json  # noqa: E402

#: Each task kind's noise-tolerant known losses, the family the prior is chosen from.
FAMILY = {"classification": ("mae", "gce", "sce"), "regression": ("log-cosh", "huber", "mae")}
#: The default's decision: the margin in paired SEs and what the SE holds.
MARGIN, UNCERTAINTY = 1.5, "folds-and-rows"
DEFAULT = "robust-prior"


def family_prior(chosen: dict) -> str:
    """The family member with the lowest mean over the folds, of those that ran every fold."""
    kind = "classification" if any(r["name"] == "cross-entropy" for r in chosen["rows"]) else "regression"
    folds = max(len(r["errors"]) for r in chosen["rows"])
    members = [r for r in chosen["rows"] if r["name"] in FAMILY[kind] and len(r["errors"]) == folds]
    return min(members, key=lambda r: r["mean"])["name"]


def decided(chosen: dict, rule: str) -> dict:
    """``chosen``'s rows decided by ``rule``: the default's own prior, or the family's best."""
    prior = chosen["prior"] if rule == DEFAULT else family_prior(chosen)
    return redecide(chosen, MARGIN, prior, UNCERTAINTY)


def judged(rule: str) -> dict[str, dict]:
    """Every development task's judgment (as the ablation and the probes judge) under ``rule``."""
    out = {}
    for spec in half(DEVELOPMENT):
        record = saved_selection(DEFAULT, spec.key)
        selection = decided(record["selection"], rule)
        result = judge(TaskResult(SUITE / spec.key), DEFAULT, {**record, "selection": selection})
        out[spec.key] = {**result, "winner": selection["winner"]}
    for spec in PROBES:
        winner = decided(read_json(_record_path(spec, DEFAULT), ValueError, "probe")["selection"], rule)["winner"]
        out[spec.key] = judge_winner(spec, winner)
    return out


def main() -> int:
    results = {rule: judged(rule) for rule in (DEFAULT, "family-prior")}
    print("| rule | worse | noisy >= 20% below standard | learned better | mean gap |\n|---|---|---|---|---|")
    for rule, tasks in results.items():
        worse = [k for k, j in tasks.items() if j["worse"]]
        better = [k for k, j in tasks.items() if j["learned_better"]]
        twenty, noisy = sum(j["twenty"] for j in tasks.values()), sum(j["noisy"] for j in tasks.values())
        gap = 100 * sum(j["gap"] for j in tasks.values()) / len(tasks)
        print(f"| {rule} | {len(worse)} {worse} | {twenty} of {noisy} | {len(better)} {better} | {gap:+.1f}% |")
    print("\n| task | default | family-prior |\n|---|---|---|")
    for key in results[DEFAULT]:
        cells = [f"{results[r][key].get('winner', '')} {results[r][key]['error']:.4f}" for r in results]
        print(f"| {key} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
