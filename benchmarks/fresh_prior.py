"""The fresh probes as development tasks: SCE as the prior above five classes (`classes-sce`) against the default.

Why: five of the 21 fresh probes (``benchmarks/fresh_probes.py``) were worse than the best known loss by two
paired SEs, and three of those five, with the evaluation half's digits-noise30-val, are the same failure: on
ten classes the selection falls back on MAE, which underfits there (its pull on the true class's logit is
cross-entropy's times that class's probability, 1/K at the start), where SCE was better. `classes-sce`, SCE as
the prior on tasks with more than five classes, was judged on the 22 development tasks alone in the sixth
session and not kept (a tie: one task worse each; a wider mean gap).

The rule, written here and committed before the evaluation half's rerun and the new fresh probes ran: the 21
fresh probes run so far become development tasks. Over them and the 22 development tasks, by the probes' rule
(the count of tasks worse than the best known loss beyond two paired SEs first, then the count of noisy tasks
20% below the tuned standard loss, then the count with a learned loss strictly better, then the mean gap; a
tie keeps the default), `classes-sce` replaces `robust-prior` if it wins. On the fresh probes its winners are
derived from their saved selection rows (no training): exact where SCE ran every fold, approximate where it
was screened out after two (successive halving then ran it on two folds only). If it wins: the evaluation
half is reselected once to report (not blind: its digits-noise30-val prompted the idea), and four new fresh
probes, named in ``fresh_probes.py`` before they run, are the blind check.

Usage::

    python benchmarks/fresh_prior.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ablation import redecide  # noqa: E402
from fresh_probes import FRESH, OUT  # noqa: E402
from suite import CLASSES  # noqa: E402
from task_results import Comparison  # noqa: E402

from evomal_sr.core.fileio import read_json  # noqa: E402
from evomal_sr.evaluation.report import MetaTestReport  # noqa: E402
from evomal_sr.evaluation.verdict import MANY_CLASSES  # noqa: E402

#: the blind check, run after the decision with the new default (not part of the rule's tasks)
BLIND = ("digits-seed17-pair20", "mnist1d-seed5-noise20", "digits-seed19-imbalance9", "breast_cancer-seed3-noise20")
#: the noisy probes (the issue's 20% target counts noisy tasks only): every probe but the clean imbalanced ones
CLEAN = ("imbalance",)


def judge(name: str, winner: str) -> tuple[str, float, float, float]:
    """``winner``'s verdict against the best known loss in probe ``name``'s meta-test, and its change on the
    standard loss (a winner that is the returned loss is looked up as ``returned``)."""
    test = Comparison(MetaTestReport.load(OUT / name / "metatest.json"))
    row = test.rows.get(winner) or test.rows["returned"]
    diff, se, verdict = test.vs_best_known(row)
    return verdict, diff, se, test.change(row)


def main() -> int:
    totals = {"robust-prior": [0, 0, 0], "classes-sce": [0, 0, 0]}  # worse, noisy 20% below, noisy tasks
    for name, keywords in FRESH.items():
        if name in BLIND:
            continue
        record = read_json(OUT / f"{name}.json", ValueError, "fresh probe")["selection"]
        many = CLASSES.get(keywords["name"], 0) > MANY_CLASSES
        screened = {r["name"]: len(r["errors"]) for r in record["rows"]}.get("sce", 0) < record["folds"]
        winners = {
            "robust-prior": record["winner"],
            "classes-sce": redecide(record, record["margin"], "sce")["winner"] if many else record["winner"],
        }
        noisy = not any(word in name for word in CLEAN)
        line = [name + (" (SCE screened out after two folds: approximate)" if many and screened else "")]
        for variant, winner in winners.items():
            verdict, diff, se, change = judge(name, winner)
            totals[variant][0] += verdict == "worse"
            totals[variant][1] += noisy and change <= -0.2
            totals[variant][2] += noisy
            line.append(f"{variant} {winner} {diff:+.4f} ± {se:.4f} ({verdict}, {change:+.0%})")
        print(" | ".join(line))
    for variant, (worse, below, noisy) in totals.items():
        ran = len(FRESH) - len(BLIND)
        print(f"{variant}: {worse} of {ran} worse than the best known; {below} of {noisy} noisy 20% below")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
