"""What the meta-test's lr extension (``lr_extend``) costs, and that it leaves the methods it does not extend alone.

``meta_test(None, task, baselines="zoo", tune_lr=True, seeds=1, steps=1500)`` on a suite task, with
``lr_extend=0`` (the grid as given) and with the default (4), alternating, ``--pairs`` times, in one
process. Prints each run's seconds, how many methods had their grid extended, the median ratio, and
whether every method whose grid was not extended got the same numbers (bit for bit) both ways.

    python benchmarks/bench_lr_extend.py [--task mnist1d] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from suite import TASKS  # noqa: E402

from evomal_sr.evaluation.metatest import LR_EXTEND, LR_FACTORS, meta_test  # noqa: E402


def timed(task, extend: int, steps: int):
    tick = time.perf_counter()
    report = meta_test(None, task, baselines="zoo", tune_lr=True, seeds=1, steps=steps, lr_extend=extend, verbose=0)
    return time.perf_counter() - tick, report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)
    task = TASKS[args.task].build(0)
    print(f"{args.task}: load average at start {os.getloadavg()}", flush=True)
    seconds: dict[int, list[float]] = {0: [], LR_EXTEND: []}
    reports = {}
    for pair in range(args.pairs):
        for extend in (0, LR_EXTEND) if pair % 2 == 0 else (LR_EXTEND, 0):
            elapsed, reports[extend] = timed(task, extend, args.steps)
            seconds[extend].append(elapsed)
            grown = sum(len(r.lr_grid) > len(LR_FACTORS) for r in reports[extend].methods)
            print(f"pair {pair + 1}, lr_extend={extend}: {elapsed:.1f} s, {grown} methods extended", flush=True)
    same = all(
        a.lr_scores == b.lr_scores and a.early_errors == b.early_errors
        for a, b in zip(reports[0].methods, reports[LR_EXTEND].methods)
        if len(b.lr_grid) == len(a.lr_grid)
    )
    given, extended = statistics.median(seconds[0]), statistics.median(seconds[LR_EXTEND])
    print(
        f"median {given:.1f} s (grid as given) against {extended:.1f} s (lr_extend={LR_EXTEND}): "
        f"{extended / given:.2f}x; methods not extended give the same numbers: {same}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
