"""Benchmark: the evaluator with and without FrozenLoss (subtrees free of fx computed once).

``FrozenLoss`` (:mod:`evomal_sr.losses.frozen`) serves the two stages that train with fixed
edge weights, the rejection fit and the partial training. This script evaluates a paper
search's own trained trees again with the ``paper`` preset on digits, in batches of
``--batch`` (5: a paper generation trains about five candidates), once with the folding and
once without it (``CandidateLosses.__post_init__`` replaced by a no-op, which leaves the
plain trees), alternating over ``--rounds``, each round with a fresh evaluator. It prints
each stage's seconds per candidate (the evaluator's own timers), the ratios, and whether
every status, fitness and edge weight came out the same (they must: the folding is exact).

Usage::

    evomal-sr search --dataset digits --preset paper --seed 0 --out RUN --quiet   # once, about 4-5 minutes
    python benchmarks/bench_frozen.py --run RUN --trees 25 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

STAGES = ("rejection", "local_search", "training")


def trained_trees(run: Path, count: int) -> list[str]:
    """``count`` trees the run trained (its checkpoint's results with status ok, not reused), evenly spaced
    over the run: later generations' trees are larger."""
    data = json.loads((run / "checkpoint.json").read_text())
    trees = [r["expression"] for r in data["evaluator"]["results"] if r["status"] == "ok" and not r.get("reused_from")]
    if not trees:
        raise SystemExit(f"{run} trained no tree: pass the folder of a finished search (--run)")
    return trees[:: max(1, len(trees) // count)][:count]


def evaluate(trees: list[str], batch: int, *, folded: bool) -> tuple[dict, list]:
    """Seconds per stage summed over the trees, and every result, from a fresh paper-preset evaluator."""
    import evomal_sr as es
    from evomal_sr.scoring.evaluator import Evaluator
    from evomal_sr.training import loop

    original = loop.CandidateLosses.__post_init__
    if not folded:
        loop.CandidateLosses.__post_init__ = lambda self: None  # the plain trees
    try:
        evaluator = Evaluator(es.Task.builtin("digits", seed=0), preset="paper", seed=0)
        seconds = dict.fromkeys(STAGES, 0.0)
        results = []
        for start in range(0, len(trees), batch):
            for result in evaluator.evaluate(trees[start : start + batch]):
                results.append((result.expression, str(result.status), result.fitness, result.weights))
                for stage in STAGES:
                    seconds[stage] += result.seconds.get(stage, 0.0)
    finally:
        loop.CandidateLosses.__post_init__ = original
    return seconds, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="folder of a finished paper search (checkpoint.json)")
    parser.add_argument("--trees", type=int, default=25, help="trained trees of the run to evaluate (default 25)")
    parser.add_argument("--batch", type=int, default=5, help="trees per evaluator call (default 5)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of both modes (default 4)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    trees = trained_trees(args.run, args.trees)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}, load {os.getloadavg()[0]:.2f}, {len(trees)} trees of {args.run}, batches of {args.batch}")
    totals: dict[bool, list[dict]] = {True: [], False: []}
    outcomes: dict[bool, list] = {}
    for round_ in range(args.rounds):
        for folded in (round_ % 2 == 0, round_ % 2 == 1):
            tick = time.perf_counter()
            seconds, outcomes[folded] = evaluate(trees, args.batch, folded=folded)
            totals[folded].append(seconds)
            per = " ".join(f"{s} {seconds[s] / len(trees):.3f}" for s in STAGES)
            label = "folded" if folded else "plain "
            print(f"round {round_ + 1} {label}: {per} s/tree; {time.perf_counter() - tick:.1f} s")
    print("median s/tree over the rounds (plain -> folded, ratio; local search is not folded: its ratio is the noise):")
    for stage in STAGES:
        plain = statistics.median(t[stage] for t in totals[False]) / len(trees)
        folded = statistics.median(t[stage] for t in totals[True]) / len(trees)
        print(f"  {stage:13s} {plain:.3f} -> {folded:.3f}  ({plain / folded:.2f}x)")
    same = outcomes[True] == outcomes[False]
    print(f"same statuses, fitnesses and weights: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
