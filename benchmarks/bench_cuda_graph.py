"""GPU check of the CUDA-graph training path: eager against replayed, side by side in one run.

Prepared for a machine with a CUDA GPU (none was available when the path was written); run it once from the
project root on the CUDA machine::

    python benchmarks/bench_cuda_graph.py                 # about 2-4 minutes on one GPU
    python benchmarks/bench_cuda_graph.py --json out.json # the figures as JSON too

On ``digits`` with the task's MLP (64-100-100-10) it prints:

* **training**: 500 SGD steps (batch 128, lr 0.01) of ``K`` = 1, 12 and 25 screened
  random candidates, all ``K`` copies together (:func:`~evomal_sr.training.loop.train_candidates`),
  eager and with ``cuda_graph=True``, best of ``--repeat`` interleaved rounds, and
  whether parameters, divergence flags and step counts are bit-identical;
* **evaluator**: seconds per candidate at the ``paper`` preset for one batch of
  the 12 candidates, ``Evaluator(cuda_graph=False)`` against ``True``, and whether
  every fitness and learned weight is identical (local search and rejection are
  not captured, so this ratio is smaller than the training one).

Without CUDA it says so and exits with status 2. ``--device cpu --steps 20 --repeat 1``
is a dry run of the script itself (the request falls back to the eager loop there,
so the ratios are about 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_training(stacked, losses, data, *, steps, cuda_graph):
    """Seconds and outcome of training every loss's copy together, eager or replayed."""
    from evomal_sr.training.loop import BatchSampler, train_candidates
    from evomal_sr.training.stacked import StackedModel

    params = StackedModel.replicate(stacked.initial_params(), len(losses))
    weights = torch.ones(len(losses), max(max(loss.n_weights for loss in losses), 1), device=data[0].device)
    synchronize(data[0].device)
    tick = time.perf_counter()
    outcome = train_candidates(
        stacked,
        params,
        losses,
        weights,
        data,
        kind="classification",
        steps=steps,
        lr=0.01,
        sampler=BatchSampler(data[0].shape[0], 128, 0),
        cuda_graph=cuda_graph,
    )
    synchronize(data[0].device)
    return time.perf_counter() - tick, outcome


def same_outcome(a, b) -> bool:
    return (
        a.diverged.tolist() == b.diverged.tolist()
        and a.steps_done.tolist() == b.steps_done.tolist()
        and all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    )


def training_rows(task, candidates, *, device, steps, repeat) -> list[dict]:
    from evomal_sr.grammar.expression import Expression
    from evomal_sr.losses.symbolic import CompiledLoss
    from evomal_sr.training.stacked import StackedModel

    stacked = StackedModel(task.make_model(seed=0).to(device))
    data = (task.X_train.to(device), task.y_train.to(device))
    rows = []
    for K in (1, 12, 25):
        losses = [CompiledLoss(Expression.parse(text)) for text in candidates[:K]]
        timed_training(stacked, losses, data, steps=5, cuda_graph=True)  # first-call costs, not measured
        best = {False: float("inf"), True: float("inf")}
        outcomes = {}
        for _ in range(repeat):
            for graph in (False, True):
                seconds, outcomes[graph] = timed_training(stacked, losses, data, steps=steps, cuda_graph=graph)
                best[graph] = min(best[graph], seconds)
        rows.append(
            {
                "K": K,
                "eager_s": best[False],
                "graph_s": best[True],
                "ratio": best[False] / best[True],
                "identical": same_outcome(outcomes[False], outcomes[True]),
            }
        )
    return rows


def evaluator_row(task, candidates, *, device) -> dict:
    from evomal_sr.scoring.evaluator import Evaluator

    row, results = {}, {}
    for graph in (False, True):
        evaluator = Evaluator(task, preset="paper", device=str(device), seed=0, cuda_graph=graph)
        tick = time.perf_counter()
        scored = evaluator.evaluate(candidates)
        synchronize(device)
        row["graph_s" if graph else "eager_s"] = (time.perf_counter() - tick) / len(candidates)
        results[graph] = [(str(r.status), r.fitness, r.weights) for r in scored]
    row["ratio"] = row["eager_s"] / row["graph_s"]
    row["identical"] = results[False] == results[True]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per run (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best counts (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run of the script")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_cuda_graph: no CUDA GPU here; run it on a machine with one.")
        return 2
    from bench_evaluator import random_candidates

    import evomal_sr as es
    from evomal_sr.core.presets import resolve_preset

    task = es.Task.builtin("digits", seed=0)
    candidates = random_candidates(25, task, resolve_preset("paper"), seed=0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    report = {
        "device": name,
        "torch": torch.__version__,
        "training": training_rows(task, candidates, device=device, steps=args.steps, repeat=args.repeat),
        "evaluator_paper_12": evaluator_row(task, candidates[:12], device=device),
    }
    print(f"{report['device']}, torch {report['torch']}; {args.steps} steps, best of {args.repeat}")
    print("| K | eager s | CUDA graph s | ratio | identical |\n|---|---|---|---|---|")
    for r in report["training"]:
        print(f"| {r['K']} | {r['eager_s']:.3f} | {r['graph_s']:.3f} | {r['ratio']:.1f}x | {r['identical']} |")
    e = report["evaluator_paper_12"]
    print(
        f"evaluator, paper preset, 12 candidates: {e['eager_s']:.3f} s -> {e['graph_s']:.3f} s per candidate "
        f"({e['ratio']:.2f}x), identical results: {e['identical']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    ok = all(r["identical"] for r in report["training"]) and e["identical"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
