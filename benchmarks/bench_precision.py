"""Does bf16 autocast of the model keep the fitness ranking? Measured on CPU, a small CNN on digits.

The question of issue 23's item 3 ("bf16 autocast or TF32 and channels-last where they keep
the fitness ranking"), asked where this machine can: the zoo's losses written in the grammar
and screened random candidates, scored by the evaluator at fp32 and at ``precision="bf16"``
(with channels-last inputs when the data are images), the same seeds. Printed: each
candidate's two fitnesses, the rank agreement (Spearman) of the trained candidates, the
statuses that changed, the time per candidate and the machine's load. TF32 needs CUDA
(``benchmarks/bench_gpu.py`` measures it).

    python benchmarks/bench_precision.py [--candidates 16] [--preset quick] [--model cnn]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_evaluator import random_candidates  # noqa: E402
from task_results import spearman  # noqa: E402

import evomal_sr as es  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.losses.zoo import zoo_expressions  # noqa: E402


def score(task, candidates, preset: str, **config) -> tuple[list, float]:
    """The evaluator's results for ``candidates`` under ``config`` and the seconds per candidate."""
    evaluator = es.Evaluator(task, preset=preset, seed=0, **config)
    tick = time.perf_counter()
    results = evaluator.evaluate(candidates)
    return results, (time.perf_counter() - tick) / len(candidates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=16, help="random candidates beside the zoo's")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--model", default="cnn", help="a built-in model name (default cnn, the small CNN)")
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args(argv)
    print("load at start", os.getloadavg(), flush=True)
    task = es.Task.builtin(args.dataset, seed=0, model=args.model)
    settings = resolve_preset(args.preset)
    # the zoo's losses written in the grammar (the candidates that matter: good ones) and random ones
    known = zoo_expressions(task.kind, settings.operators)
    candidates = known + random_candidates(args.candidates, task, settings, seed=0)[: args.candidates]
    fp32, fp32_s = score(task, candidates, args.preset)
    bf16, bf16_s = score(task, candidates, args.preset, precision="bf16", channels_last=True)
    print(f"{args.dataset}, model {args.model}, preset {args.preset}, {len(candidates)} candidates")
    print("| candidate | fp32 status | fp32 fitness | bf16 status | bf16 fitness |\n|---|---|---|---|---|")
    for text, a, b in zip(candidates, fp32, bf16):
        print(f"| `{text}` | {a.status} | {a.fitness:.4f} | {b.status} | {b.fitness:.4f} |")
    both = [(a.fitness, b.fitness) for a, b in zip(fp32, bf16) if math.isfinite(a.fitness) and math.isfinite(b.fitness)]
    changed = sum(a.status != b.status for a, b in zip(fp32, bf16))
    same_best = min(range(len(fp32)), key=lambda i: fp32[i].fitness) == min(
        range(len(bf16)), key=lambda i: bf16[i].fitness
    )
    rho = spearman([a for a, _ in both], [b for _, b in both])
    gap = max((abs(a - b) for a, b in both), default=0.0)
    print(
        f"Spearman of the {len(both)} trained candidates' fitnesses, fp32 against bf16: {rho:.3f}; "
        f"largest difference {gap:.4f}; statuses changed: {changed}; best candidate the same: "
        f"{same_best}"
    )
    print(f"seconds per candidate: fp32 {fp32_s:.2f}, bf16 {bf16_s:.2f}; load at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
