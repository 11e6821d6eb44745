"""The loss interpreter (evomal_sr.losses.program) against the per-tree path, side by side, on CPU.

For K = 1, 12, 25 random complete trees of the paper grammar (grown to heights 3-7, the
sizes a paper search evaluates), times the loss part of the two steps the pipeline takes:

* ``train``: loss of every candidate on its slice of ``[K, batch, classes]`` outputs and
  its gradient w.r.t. the outputs (one partial-training step, the model excluded);
* ``meta``: the same with ``create_graph``, one SGD step on the outputs, a validation
  loss and its gradient w.r.t. the edge weights (one local-search step: double backward).

Both paths run alternately in one process (median of ``--repeats``), so the ratio is
measured side by side; the machine's load (``os.getloadavg``) is printed with it. The
exactness columns give the largest difference of the values and gradients.

    python benchmarks/bench_program.py [--repeats 30] [--threads 1] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import torch

from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import Node
from evomal_sr.grammar.operators import VARIABLES, searchable_operators
from evomal_sr.losses.program import LossProgram
from evomal_sr.losses.symbolic import CompiledLoss

BATCH, CLASSES = 128, 10  # digits at the paper preset


def random_tree(rng: random.Random, height: int) -> Node:
    """A grown tree of height at most ``height`` over the paper grammar (leaves 20% below the root)."""
    if height <= 1 or (height < 6 and rng.random() < 0.2):
        return Node.variable(rng.choice(VARIABLES)) if rng.random() < 0.8 else Node.constant(rng.choice((1.0, -1.0)))
    op = rng.choice(searchable_operators("paper"))
    return Node.apply(op.name, tuple(random_tree(rng, height - 1) for _ in range(op.arity)))


def random_population(K: int, seed: int) -> list[Expression]:
    rng = random.Random(seed)
    return [Expression(random_tree(rng, rng.randint(3, 7))).repair(rng) for _ in range(K)]


def per_tree(losses, weights, y, fx):
    """The reference path: one compiled tree per candidate on its own slice (as CandidateLosses)."""
    rows, slices = weights.unbind(0), fx.unbind(0)
    return torch.stack(
        [torch.broadcast_to(loss(rows[k], y, slices[k]), slices[k].shape) for k, loss in enumerate(losses)]
    )


def train_step(run, weights, y, logits):
    logits = logits.detach().requires_grad_(True)
    values = run(weights, y, torch.softmax(logits, -1)).sum(-1).mean(-1)
    (grad,) = torch.autograd.grad(values.sum(), logits)
    return values.detach(), grad


def meta_step(run, weights, y, logits, lr=0.01):
    weights = weights.detach().requires_grad_(True)
    logits = logits.detach().requires_grad_(True)
    values = run(weights, y, torch.softmax(logits, -1)).sum(-1).mean(-1)
    (grad,) = torch.autograd.grad(values.sum(), logits, create_graph=True)
    outer = torch.nn.functional.cross_entropy(
        (logits - lr * grad).reshape(-1, CLASSES), y.argmax(-1).repeat(logits.shape[0])
    )
    (meta,) = torch.autograd.grad(outer, weights)
    return values.detach(), meta


def timed(fn, repeats, device="cpu"):
    """Median seconds of ``fn()`` (the device synchronised around each call on CUDA)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    times = []
    for _ in range(repeats):
        sync()
        tick = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def compare(K: int, seed: int, repeats: int, device: str):
    exprs = random_population(K, seed)
    losses = [CompiledLoss(e) for e in exprs]
    build = time.perf_counter()
    program = LossProgram(losses)
    build = time.perf_counter() - build
    gen = torch.Generator().manual_seed(seed)
    E = max(max(loss.n_weights for loss in losses), 1)
    weights = (1 + 1e-3 * torch.randn(K, E, generator=gen)).to(device)
    logits = torch.randn(K, BATCH, CLASSES, generator=gen).to(device)
    y = torch.nn.functional.one_hot(torch.randint(CLASSES, (BATCH,), generator=gen), CLASSES).float().to(device)
    ref = lambda w, yy, fx: per_tree(losses, w, yy, fx)  # noqa: E731
    row = {
        "K": K,
        "nodes": sum(e.size for e in exprs) / K,
        "height": max(e.depth for e in exprs) - 1,
        "build_ms": build * 1e3,
    }
    for name, step in (("train", train_step), ("meta", meta_step)):
        a, b = step(ref, weights, y, logits), step(program, weights, y, logits)
        row[f"{name}_diff"] = max(float((u - v).abs().max()) for u, v in zip(a, b))
        t_ref, t_prog = [], []
        for _ in range(3):  # alternate, so a change of load hits both
            t_ref.append(timed(lambda step=step: step(ref, weights, y, logits), repeats, device))
            t_prog.append(timed(lambda step=step: step(program, weights, y, logits), repeats, device))
        row[f"{name}_ref_ms"], row[f"{name}_prog_ms"] = min(t_ref) * 1e3, min(t_prog) * 1e3
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="1,12,25")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, load before {os.getloadavg()}")
    header = (
        f"{'K':>3} {'nodes':>6} {'h':>3} | {'train ref':>9} {'prog':>7} {'ratio':>6} | "
        f"{'meta ref':>9} {'prog':>7} {'ratio':>6} | {'max diff':>9} {'build':>6}"
    )
    print(header)
    for K in (int(k) for k in args.sizes.split(",")):
        r = compare(K, args.seed, args.repeats, args.device)
        print(
            f"{K:>3} {r['nodes']:>6.1f} {r['height']:>3} | {r['train_ref_ms']:>7.2f}ms {r['train_prog_ms']:>5.2f}ms "
            f"{r['train_ref_ms'] / r['train_prog_ms']:>5.2f}x | {r['meta_ref_ms']:>7.2f}ms "
            f"{r['meta_prog_ms']:>5.2f}ms {r['meta_ref_ms'] / r['meta_prog_ms']:>5.2f}x | "
            f"{max(r['train_diff'], r['meta_diff']):>9.1e} {r['build_ms']:>4.1f}ms"
        )
    print(f"load after {os.getloadavg()}; ratio = per-tree time / program time (> 1: the program is faster)")


if __name__ == "__main__":
    main()
