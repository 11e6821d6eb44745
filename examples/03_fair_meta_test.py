"""The fair meta-test: a learned loss against known losses, each at its own tuned learning rate.

What it shows
-------------
- a search on ``digits`` with 40% label noise (or ``--loss EXPR`` to test a loss you
  already have, skipping the search);
- ``es.meta_test(loss, task, tune_lr=True, baselines=[...])``: every method trains fresh
  models at every learning rate of a grid, picks its own lr and early-stopping step on
  validation rows, then reports the test error with paired differences over seeds;
- the report printed, saved as ``report.md``, ``report.csv`` and ``report.json``, and its
  training curves plotted to ``curves.png`` (validation) and ``test_curves.png``.

How long
--------
About a minute and a half on two idle CPU cores (``quick`` search, then 3 seeds x 1000
steps against four known losses: 66 s of CPU time; 2.5 min on a busy machine); ``--tiny`` a
few seconds. ``baselines="zoo"`` (every known loss) and 5 seeds x
5000 steps is what ``benchmarks/RESULTS.md`` uses.

Run::

    python examples/03_fair_meta_test.py [--out DIR] [--tiny]
    python examples/03_fair_meta_test.py --loss "abs(y - fx)" --seeds 5 --steps 3000
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import evomal_sr as es

BASELINES = ["cross-entropy", "label-smoothing", "sce", "mae"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a new temporary folder)")
    parser.add_argument("--loss", default=None, help="test this expression instead of searching for a loss")
    parser.add_argument("--preset", default="quick", help="search budget: tiny, quick, standard or paper")
    parser.add_argument("--seeds", type=int, default=3, help="meta-test seeds")
    parser.add_argument("--steps", type=int, default=1000, help="SGD steps per meta-test model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny",
        action="store_true",
        default=bool(os.environ.get("EVOMAL_EXAMPLES_TINY")),
        help="smoke-test budget (also with EVOMAL_EXAMPLES_TINY=1)",
    )
    args = parser.parse_args()
    if args.tiny:
        args.preset, args.seeds, args.steps = "tiny", 2, 40
    args.out = Path(args.out or tempfile.mkdtemp(prefix="evomal-example3-"))
    return args


def main() -> None:
    args = parse_args()
    task = es.Task.builtin("digits", seed=args.seed, label_noise=0.4)
    if args.loss is None:
        loss = es.LossSearch(preset=args.preset, seed=args.seed).fit(task).best_loss_
    else:
        loss = es.LearnedLoss(args.loss, task=task.kind)  # es.ExpressionError on bad text
    print(f"testing {loss.expression_with_weights()}")

    report = es.meta_test(
        loss, task, tune_lr=True, baselines=BASELINES, seeds=args.seeds, steps=args.steps, seed=args.seed
    )
    print(report)  # every method at its own lr, final and early-stopped test error, paired differences

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report.to_markdown())
    report.to_csv(args.out / "report.csv")
    report.to_json(args.out / "report.json")  # es.MetaTestReport.load(path) reads it back
    report.plot_curves(args.out / "curves.png")  # validation error per method, early stops marked
    report.plot_curves(args.out / "test_curves.png", which="test")
    best = min(report.methods, key=lambda row: row.early_mean)
    print(f"lowest early-stopped test error: {best.method} ({best.early_mean:.4f} at lr {best.lr:g})")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
