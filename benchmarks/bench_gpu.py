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
   screened random candidates, for ``program`` per-tree/tensor x ``cuda_graph`` off/on (the graphs
   replay the rejection fit, the local-search iteration and the training step), whether
   the fitnesses are identical to the per-tree eager reference and the largest weight difference;
   the target is <= 0.05 s; a 25 x 50 paper search estimate (s per candidate x 1250, an upper
   bound: caches and rejections make later generations cheaper); the ratio to the CPU figure
   given with ``--cpu-s-per-candidate`` (target: the GPU >= 10x one CPU core);
3. **AllCNN-C** on CIFAR-shaped images (3x32x32, 10 classes, a pattern per class plus noise),
   paper preset, seconds per candidate for ``--allcnn-candidates`` candidates: fp32 per-tree
   (the reference) against the interpreter, TF32, TF32 + channels-last and bf16 + channels-last
   (:mod:`evomal_sr.training.precision`), each with its fitness rank agreement (Spearman) and
   largest fitness difference against fp32 (target <= 4 s; a lower precision must keep the ranking).

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

#: The scorer's stages, as its results time them (seconds per candidate).
STAGES = ("rejection", "local_search", "training")
#: Largest learned-weight difference accepted between the tensor program and the per-tree path.
WEIGHT_TOLERANCE = 1e-4


def allcnn_configs(device: torch.device) -> list[dict]:
    """AllCNN-C's configurations: fp32 per-tree (the reference), the interpreter, and the lower precisions."""
    configs: list[dict] = [{"program": "per-tree"}, {"program": "tensor"}]
    if device.type == "cuda":  # TF32 is CUDA-only; channels-last is what cuDNN's tensor-core kernels prefer
        return configs + [
            {"precision": "tf32"},
            {"precision": "tf32", "channels_last": True},
            {"precision": "bf16", "channels_last": True},
        ]
    return configs + [{"precision": "bf16"}, {"precision": "bf16", "channels_last": True}]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loss_rows(device: str, repeats: int) -> list[dict]:
    from bench_program import compare

    return [compare(K, 0, repeats, device) for K in (1, 12, 25)]


def evaluator_rows(task, candidates, *, device, preset, configs) -> list[dict]:
    """Seconds per candidate of one batch in each configuration (``Evaluator`` keywords), and exactness.

    The first configuration is the reference; each row says whether the statuses and fitnesses equal
    its, the largest weight difference, and the rank agreement (Spearman) of the trained candidates'
    fitnesses with its (what a lower precision must keep).
    """
    from task_results import spearman

    from evomal_sr.scoring.evaluator import Evaluator

    rows, reference = [], None
    for config in configs:
        evaluator = Evaluator(task, preset=preset, device=str(device), seed=0, **config)
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
        both = [(a[1], b[1]) for a, b in zip(results, reference) if math.isfinite(a[1]) and math.isfinite(b[1])]
        rows.append(
            {
                "program": config.get("program", "per-tree"),
                "cuda_graph": config.get("cuda_graph", False),
                "precision": config.get("precision", "fp32"),
                "channels_last": config.get("channels_last", False),
                "exact_expected": config.get("precision", "fp32") == "fp32" and not config.get("channels_last"),
                "s_per_candidate": seconds,
                "same_status": [r[0] for r in results] == [r[0] for r in reference],
                "same_fitness": [r[1] for r in results] == [r[1] for r in reference],
                "max_weight_diff": weight_diff,
                "fitness_spearman": spearman([a for a, _ in both], [b for _, b in both]) if len(both) > 2 else None,
                "max_fitness_diff": max((abs(a - b) for a, b in both), default=0.0),
                "statuses": {s: [r[0] for r in results].count(s) for s in {r[0] for r in results}},
                # each stage's seconds per candidate of the batch (every result of a batch carries the same)
                "stages": {k: max(r.seconds.get(k, 0.0) for r in scored) for k in STAGES},
            }
        )
    return rows


def allcnn_task(n_rows: int):
    """CIFAR-shaped images (3x32x32, 10 classes) with a learnable signal: a fixed pattern per class plus noise.

    Random labels would make every candidate's fitness about 0.9, and so no ranking to keep.
    """
    import evomal_sr as es

    generator = torch.Generator().manual_seed(0)
    patterns = torch.randn(10, 3, 32, 32, generator=generator)
    y = torch.randint(10, (n_rows,), generator=generator)
    X = 0.3 * patterns[y] + torch.randn(n_rows, 3, 32, 32, generator=generator)
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
        "| program | cuda graph | s / candidate | rejection / local search / training | 25x50 estimate, s | "
        "same status | same fitness | max weight diff |\n|---|---|---|---|---|---|---|---|"
    )
    for r in report["digits"]:
        stages = " / ".join(f"{r['stages'][k]:.3f}" for k in STAGES)
        print(
            f"| {r['program']} | {r['cuda_graph']} | {r['s_per_candidate']:.3f} | {stages} | "
            f"{r['s_per_candidate'] * 1250:.0f} | {r['same_status']} | {r['same_fitness']} | "
            f"{r['max_weight_diff']:.1e} |"
        )
    best = min(r["s_per_candidate"] for r in report["digits"])
    if cpu_s:
        print(f"GPU best {best:.3f} s against CPU {cpu_s:.3f} s per candidate: {cpu_s / best:.1f}x (target >= 10x)")
    if report.get("allcnn"):
        print(f"\n3. AllCNN-C, CIFAR-shaped, {report['preset']} preset (target <= 4 s per candidate)")
        print(
            "| program | precision | channels-last | s / candidate | same status | same fitness | "
            "fitness Spearman | max fitness diff | max weight diff |\n|---|---|---|---|---|---|---|---|---|"
        )
        for r in report["allcnn"]:
            rho = "n/a" if r["fitness_spearman"] is None else f"{r['fitness_spearman']:.2f}"
            print(
                f"| {r['program']} | {r['precision']} | {r['channels_last']} | {r['s_per_candidate']:.2f} | "
                f"{r['same_status']} | {r['same_fitness']} | {rho} | {r['max_fitness_diff']:.1e} | "
                f"{r['max_weight_diff']:.1e} |"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run of the script")
    parser.add_argument("--preset", default="paper", help="paper (default); tiny for a dry run")
    parser.add_argument("--candidates", type=int, default=12, help="digits candidates in the batch (default 12)")
    parser.add_argument("--allcnn-candidates", type=int, default=3, help="0 skips AllCNN-C (default 3)")
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
    from evomal_sr.core.validation import PROGRAMS  # the per-tree reference first

    started = time.perf_counter()
    settings = resolve_preset(args.preset)
    task = es.Task.builtin("digits", seed=0)
    candidates = random_candidates(args.candidates, task, settings, seed=0)[: args.candidates]
    configs = [{"program": p, "cuda_graph": g} for g in (False, True)[: 1 + (device.type == "cuda")] for p in PROGRAMS]
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
            configs=allcnn_configs(device),
        )
    print_report(report, args.cpu_s_per_candidate)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    rows = report["digits"] + report.get("allcnn", [])
    ok = all(r["same_status"] and r["max_weight_diff"] <= WEIGHT_TOLERANCE for r in rows if r["exact_expected"])
    ok &= all(math.isfinite(r["train_diff"]) and r["train_diff"] < 1e-4 for r in report["loss_steps"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
