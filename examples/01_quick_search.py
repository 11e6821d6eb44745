"""Quick search on a built-in dataset, then export the best loss as a standalone torch module.

What it shows
-------------
- ``es.Task.builtin`` and ``es.LossSearch(preset="quick").fit(task)``;
- the Pareto front: printed, and written with the run's other files to ``OUT/run/``
  (``pareto.csv``, ``pareto.json``, ``pareto.png``, ``history.csv``);
- exporting ``search.best_loss_`` as a ``.py`` file that needs only torch (what
  ``evomal-sr export RUN --format torch`` writes), importing that file and training a
  model for a few steps with it.

How long
--------
About half a minute on two idle CPU cores (preset ``quick`` on ``digits``: 23 s of CPU
time; one minute on a busy machine); ``--tiny`` (preset ``tiny``, used by the tests) a few
seconds.

Run::

    python examples/01_quick_search.py                 # results in a new temporary folder
    python examples/01_quick_search.py --out runs/ex1 --dataset iris
    EVOMAL_EXAMPLES_TINY=1 python examples/01_quick_search.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import torch

import evomal_sr as es
from evomal_sr.results.export import export_loss


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a new temporary folder)")
    parser.add_argument("--dataset", default="digits", help="a built-in dataset (digits, iris, wine, ...)")
    parser.add_argument("--preset", default="quick", help="search budget: tiny, quick, standard or paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny",
        action="store_true",
        default=bool(os.environ.get("EVOMAL_EXAMPLES_TINY")),
        help="smoke-test budget (also with EVOMAL_EXAMPLES_TINY=1)",
    )
    args = parser.parse_args()
    if args.tiny:
        args.preset = "tiny"
    args.out = Path(args.out or tempfile.mkdtemp(prefix="evomal-example1-"))
    return args


def load_module(path: Path):
    """Import the exported file as a module (as ``from my_loss import LearnedLoss`` would)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    args = parse_args()
    task = es.Task.builtin(args.dataset, seed=args.seed)
    search = es.LossSearch(preset=args.preset, seed=args.seed, out_dir=args.out / "run").fit(task)
    front = search.pareto_front_  # also written to run/: pareto.csv, pareto.json, pareto.png, history.csv
    print(front.table())  # from the simplest loss to the most accurate

    # the most accurate loss of the front, as a file that needs only torch
    best = search.best_loss_
    path = args.out / "my_loss.py"
    path.write_text(export_loss(best, "torch", filename=path.name))
    exported = load_module(path).LearnedLoss()

    # the exported module computes the same values as evomal-sr's own LearnedLoss
    logits, labels = torch.randn(16, task.n_outputs), torch.randint(task.n_outputs, (16,))
    assert torch.allclose(exported(logits, labels), best(logits, labels), atol=1e-5)

    # ... and trains a model like any torch loss (weights frozen: the loss is finished)
    exported.requires_grad_(False)
    model = task.make_model(seed=args.seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=search.settings_.lr)  # the preset's SGD lr
    for step in range(20):
        rows = torch.randint(len(task.y_train), (64,), generator=torch.Generator().manual_seed(step))
        loss = exported(model(task.X_train[rows]), task.y_train[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    print(f"best loss: {front.select(search.model_selection).equation()}")
    print(f"exported to {path}; 20 SGD steps with it, last loss value {loss.item():.4f}")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
