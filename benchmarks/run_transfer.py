"""Transfer check: a loss learned with the MLP, meta-tested with other models on the same data.

Reads the ``EvoMAL (standard)`` loss that ``run_results.py`` saved for a task
(``results/<task>/evomal-standard-loss.json``, found with the MLP) and meta-tests
it with other models (by default the ``cnn``) on the same data, on the same fair
protocol (every method at its own tuned lr, early-stopped; by default against
the whole zoo, or ``--baselines`` names a few known losses to save time).
``run_results.py --report-only`` then adds the tables to RESULTS.md.

Usage::

    python benchmarks/run_transfer.py                       # digits-noise40 and digits, cnn
    python benchmarks/run_transfer.py --tasks digits-noise40 --steps 3000 --seeds 3 \
        --baselines cross-entropy,sce,mae
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import torch  # noqa: E402

from evomal_sr import LearnedLoss, Task, meta_test  # noqa: E402
from evomal_sr.core.fileio import atomic_write_json  # noqa: E402

#: Report name -> (dataset, label noise), as in run_results.py.
TASKS = {"digits-noise40": ("digits", 0.4), "digits": ("digits", 0.0)}
LOSS_FILE = "evomal-standard-loss.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default="cnn")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--baselines", default="zoo", help='"zoo" or comma-separated known-loss names')
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    baselines = "zoo" if args.baselines == "zoo" else [b.strip() for b in args.baselines.split(",") if b.strip()]
    for key in args.tasks.split(","):
        dataset, noise = TASKS[key]
        loss = LearnedLoss.load(args.out / key / LOSS_FILE)
        for model in args.models.split(","):
            task = Task.builtin(dataset, seed=0, label_noise=noise, model=model)
            tick = time.perf_counter()
            report = meta_test(
                {"EvoMAL (standard), learned with mlp": loss},
                task,
                seeds=args.seeds,
                steps=args.steps,
                baselines=baselines,
                tune_lr=True,
                eval_every=args.eval_every,
            )
            folder = args.out / "transfer" / f"{key}-{model}"
            report.to_json(folder / "metatest.json")
            report.plot_curves(folder / "curves.png")
            atomic_write_json(
                folder / "run.json",
                {
                    "seconds": time.perf_counter() - tick,
                    "task": key,
                    "model": model,
                    "loss": str(loss.expression),
                    "command": " ".join(["python", "benchmarks/run_transfer.py", *sys.argv[1:]]),
                },
            )
            print(f"[{key} -> {model}] {time.perf_counter() - tick:.0f} s\n{report}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
