"""The one prepared GPU check of the one-program redesign: the target figures it can measure, with exactness checks.

Written without a GPU: it has only been dry-run on CPU (``--device cpu --preset tiny``), never on a
GPU. Run it from the project root on the CUDA machine (about 3-4 minutes on one H200 by estimate)::

    python benchmarks/bench_gpu.py --cpu-s-per-candidate 0.35     # the CPU figure to compare with
    python benchmarks/bench_gpu.py --json gpu.json                 # the figures as JSON too

It prints, side by side in one process:

1. **loss steps**: one partial-training step (loss + gradient w.r.t. the outputs) and one
   local-search step (double backward to the edge weights) of K = 1, 12, 25 random trees, per-tree
   path against the population interpreter (:mod:`evomal_sr.losses.program`), with the largest
   difference of values and gradients (``benchmarks/bench_program.py`` on the device);
2. **digits, paper preset**: seconds per evaluated candidate for one batch of ``--candidates``
   screened random candidates, for ``program`` per-tree/tensor x ``cuda_graph`` off/on, whether
   the fitnesses are identical to the per-tree eager reference and the largest weight difference;
   the target is <= 0.05 s; a 25 x 50 paper search estimate (s per candidate x 1250, an upper
   bound: caches and rejections make later generations cheaper); the ratio to the CPU figure
   given with ``--cpu-s-per-candidate`` (target: the GPU >= 10x one CPU core);
3. **AllCNN-C** on random CIFAR-shaped images (3x32x32, 10 classes), paper preset, seconds per
   candidate for ``--allcnn-candidates`` candidates, per-tree against tensor (target <= 4 s).

Exit status: 2 without CUDA (unless ``--device cpu``), 1 if an exactness check failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

#: Largest learned-weight difference accepted between the tensor program and the per-tree path.
WEIGHT_TOLERANCE = 1e-4


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loss_rows(device: str, repeats: int) -> list[dict]:
    from bench_program import compare

    return [compare(K, 0, repeats, device) for K in (1, 12, 25)]


def evaluator_rows(task, candidates, *, device, preset, configs) -> list[dict]:
    """Seconds per candidate of one batch in each (program, cuda_graph) configuration, and exactness."""
    from evomal_sr.scoring.evaluator import Evaluator

    rows, reference = [], None
    for program, graph in configs:
        evaluator = Evaluator(task, preset=preset, device=str(device), seed=0, cuda_graph=graph, program=program)
        synchronize(device)
        tick = time.perf_counter()
        scored = evaluator.evaluate(candidates)
        synchronize(device)
        seconds = (time.perf_counter() - tick) / len(candidates)
        results = [(str(r.status), r.fitness, r.weights) for r in scored]
        reference = results if reference is None else reference
        weight_diff = max(
            (max((abs(a - b) for a, b in zip(x[2], y[2])), default=0.0) for x, y in zip(results, reference)),
            default=0.0,
        )
        rows.append(
            {
                "program": program,
                "cuda_graph": graph,
                "s_per_candidate": seconds,
                "same_status": [r[0] for r in results] == [r[0] for r in reference],
                "same_fitness": [r[1] for r in results] == [r[1] for r in reference],
                "max_weight_diff": weight_diff,
                "statuses": {s: [r[0] for r in results].count(s) for s in {r[0] for r in results}},
            }
        )
    return rows


def allcnn_task(n_rows: int):
    import evomal_sr as es

    generator = torch.Generator().manual_seed(0)
    X = torch.randn(n_rows, 3, 32, 32, generator=generator)
    y = torch.randint(10, (n_rows,), generator=generator)
    return es.Task.from_arrays(X, y, kind="classification", model="allcnnc", seed=0, name="cifar-shaped")


def print_report(report: dict, cpu_s: float | None) -> None:
    print(f"{report['device']}, torch {report['torch']}, preset {report['preset']}")
    print("\n1. loss steps (ms; ratio = per-tree / interpreter, > 1: interpreter faster)")
    print("| K | nodes | train per-tree | train interp | ratio | meta per-tree | meta interp | ratio | max diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["loss_steps"]:
        print(
            f"| {r['K']} | {r['nodes']:.1f} | {r['train_ref_ms']:.2f} | {r['train_prog_ms']:.2f} | "
            f"{r['train_ref_ms'] / r['train_prog_ms']:.2f}x | {r['meta_ref_ms']:.2f} | {r['meta_prog_ms']:.2f} | "
            f"{r['meta_ref_ms'] / r['meta_prog_ms']:.2f}x | {max(r['train_diff'], r['meta_diff']):.1e} |"
        )
    print(
        f"\n2. digits, {report['preset']} preset, {report['n_candidates']} candidates in one batch "
        "(target <= 0.05 s per candidate)"
    )
    print(
        "| program | cuda graph | s / candidate | 25x50 estimate, s | same status | same fitness | max weight diff |"
        "\n|---|---|---|---|---|---|---|"
    )
    for r in report["digits"]:
        print(
            f"| {r['program']} | {r['cuda_graph']} | {r['s_per_candidate']:.3f} | "
            f"{r['s_per_candidate'] * 1250:.0f} | {r['same_status']} | {r['same_fitness']} | "
            f"{r['max_weight_diff']:.1e} |"
        )
    best = min(r["s_per_candidate"] for r in report["digits"])
    if cpu_s:
        print(f"GPU best {best:.3f} s against CPU {cpu_s:.3f} s per candidate: {cpu_s / best:.1f}x (target >= 10x)")
    if report.get("allcnn"):
        print(f"\n3. AllCNN-C, CIFAR-shaped, {report['preset']} preset (target <= 4 s per candidate)")
        for r in report["allcnn"]:
            print(
                f"   {r['program']}: {r['s_per_candidate']:.2f} s per candidate, same fitness {r['same_fitness']}, "
                f"max weight diff {r['max_weight_diff']:.1e}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run of the script")
    parser.add_argument("--preset", default="paper", help="paper (default); tiny for a dry run")
    parser.add_argument("--candidates", type=int, default=12, help="digits candidates in the batch (default 12)")
    parser.add_argument("--allcnn-candidates", type=int, default=2, help="0 skips AllCNN-C (default 2)")
    parser.add_argument("--allcnn-rows", type=int, default=2000, help="random CIFAR-shaped rows (default 2000)")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of each loss step (default 20)")
    parser.add_argument("--cpu-s-per-candidate", type=float, help="the CPU figure to compare the GPU with")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; run it on a machine with one (or --device cpu for a dry run).")
        return 2
    from bench_evaluator import random_candidates

    import evomal_sr as es
    from evomal_sr.core.presets import resolve_preset

    started = time.perf_counter()
    settings = resolve_preset(args.preset)
    task = es.Task.builtin("digits", seed=0)
    candidates = random_candidates(args.candidates, task, settings, seed=0)[: args.candidates]
    configs = [("per-tree", False), ("tensor", False)]
    if device.type == "cuda":
        configs += [("per-tree", True), ("tensor", True)]
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "preset": args.preset,
        "n_candidates": len(candidates),
        "loss_steps": loss_rows(str(device), args.repeats),
        "digits": evaluator_rows(task, candidates, device=device, preset=args.preset, configs=configs),
    }
    if args.allcnn_candidates:
        cifar = allcnn_task(args.allcnn_rows)
        report["allcnn"] = evaluator_rows(
            cifar,
            candidates[: args.allcnn_candidates],
            device=device,
            preset=args.preset,
            configs=[("per-tree", False), ("tensor", False)],
        )
    print_report(report, args.cpu_s_per_candidate)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    rows = report["digits"] + report.get("allcnn", [])
    ok = all(r["same_status"] and r["max_weight_diff"] <= WEIGHT_TOLERANCE for r in rows)
    ok &= all(math.isfinite(r["train_diff"]) and r["train_diff"] < 1e-4 for r in report["loss_steps"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
