"""The floor under the one-program issue's CPU figures: the model's own passes, bare, per candidate.

The issue asks for the floor (the arithmetic of one step) beside each figure. For the side-by-side
harness's figures (digits MLP 64-100-100-10, batch 128, the ``paper`` preset: 250 rejection steps on 64
raw predictions, 250 local-search meta-iterations, 500 training steps, one validation pass) this times
what no implementation of the paper's pipeline can skip, as bare batched torch calls on one thread:

* a **training step**: the forward (three ``baddbmm`` and two ReLU masks), the cross-entropy's output
  gradient in closed form (``softmax - one_hot``), the backward (five ``bmm``, three bias sums) and the
  SGD update;
* a **meta-iteration** in its cheapest known form (one inner SGD step, the fifteenth session's
  ``by-hand`` form of ``benchmarks/bench_meta_gradient.py``): that training step's forward and backward
  to ``theta'``, the validation forward and backward to ``v``, and the tangent ``J v``, the model's
  share of the edge weights' gradient; the loss tree's own derivatives, which depend on the candidate,
  are left out (a few element-wise operations per node);
* a **rejection step**: the cross-entropy's gradient and an Adam step on 64 x 10 raw predictions;
* the **validation pass**: one forward of the 360 validation rows.

Every candidate's tree adds its own operations on top, so these are lower bounds, not estimates. A
float64 check first: the bare meta-iteration's value against autograd's dV/dw for the loss
``w * cross-entropy``. Then the package's own training step and meta-gradient (``bench_meta_gradient.py``'s
problem, K = 1 and 5 trees) in the same process, as multiples of the bare passes. It also prints the
arithmetic alone: the floating-point operations of each piece at the rate one large matrix product
reaches on this core. Then each harness figure's floor, per tree one at a time (K = 1) and per
candidate in a batch (K copies), with each side's figure as a multiple of it: the reference's multiple
is the most that any implementation of our pipeline could show against it on this machine.

    python benchmarks/bench_floor.py [--rounds 7] [--calls 200] [--batch-copies 7] [--trained-share 0.435]

``--trained-share`` is the share of evaluated candidates that pass rejection in our random pass (the
seventeenth session's harness: 80 of 184) and ``--batch-copies`` the survivors per batch (its
candidate-weighted mean, 6.2-7.3); each side's figures (``--ref-*``, ``--ours-*``) default to that run's
(``THREADS=1 bash ../shared/bench/sidebyside/run.sh`` at ``b603d7f``): they are inputs, not measured here.
Measured in ``benchmarks/PERFORMANCE.md`` (eighteenth session).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
from bench_meta_gradient import (
    TREES,
    _relu_mlp_backward,
    _relu_mlp_forward,
    _relu_mlp_tangent,
    package_meta_gradient,
    problem,
)
from bench_meta_gradient import training_steps as package_training_steps
from bench_program import timed

from evomal_sr.core.memory import keep_freed_memory

SIZES, BATCH, VAL_ROWS, REJECTION_ROWS, LR = (64, 100, 100, 10), 128, 360, 64, 0.01
#: the ``paper`` preset's counts per candidate
REJECTION_STEPS, META_ITERATIONS, TRAIN_STEPS = 250, 250, 500
LINEARS = [(f"w{i}", f"b{i}") for i in range(len(SIZES) - 1)]  # what the helpers iterate over


def mlp(copies: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    shapes = list(zip(SIZES[1:], SIZES[:-1]))
    weights = [0.1 * torch.randn(copies, out, inp, generator=generator) for out, inp in shapes]
    return weights, [torch.zeros(copies, out) for out, _ in shapes]


def output_gradient(z: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy's gradient at the logits, in closed form."""
    return (torch.softmax(z, -1) - one_hot) / z.shape[-2]


def train_step(W, b, x, one_hot) -> None:
    with torch.no_grad():
        inputs, masks, z = _relu_mlp_forward(LINEARS, W, b, x, W[0].shape[0])
        grads_w, grads_b = _relu_mlp_backward(W, inputs, masks, output_gradient(z, one_hot))
        torch._foreach_sub_(W + b, torch._foreach_mul(grads_w + grads_b, LR))


def meta_iteration(W, b, x, one_hot, x_val, one_hot_val) -> torch.Tensor:
    """The model's passes of one meta-gradient (one inner SGD step), without the loss tree's derivatives."""
    K = W[0].shape[0]
    with torch.no_grad():
        inputs, masks, z = _relu_mlp_forward(LINEARS, W, b, x, K)
        dz = output_gradient(z, one_hot)
        grads_w, grads_b = _relu_mlp_backward(W, inputs, masks, dz)
        W_new = [p - LR * g for p, g in zip(W, grads_w)]
        b_new = [p - LR * g for p, g in zip(b, grads_b)]
        val_inputs, val_masks, z_val = _relu_mlp_forward(LINEARS, W_new, b_new, x_val, K)
        v_w, v_b = _relu_mlp_backward(W_new, val_inputs, val_masks, output_gradient(z_val, one_hot_val))
        return (dz * _relu_mlp_tangent(W, inputs, masks, v_w, v_b)).sum((1, 2))  # J v at theta


class RejectionFit:
    """Adam on raw predictions, the cross-entropy's gradient in closed form (the rejection fit's arithmetic)."""

    def __init__(self, copies: int, one_hot: torch.Tensor):
        self.raw = torch.randn(copies, *one_hot.shape, generator=torch.Generator().manual_seed(1))
        self.m, self.v, self.t, self.one_hot = torch.zeros_like(self.raw), torch.zeros_like(self.raw), 0, one_hot

    def step(self) -> None:
        grad = output_gradient(self.raw, self.one_hot)
        self.t += 1
        self.m.mul_(0.9).add_(grad, alpha=0.1)
        self.v.mul_(0.999).addcmul_(grad, grad, value=0.001)
        denominator = (self.v / (1 - 0.999**self.t)).sqrt_().add_(1e-6)
        self.raw.addcdiv_(self.m, denominator, value=-LR / (1 - 0.9**self.t))


def validation_pass(W, b, x_val) -> torch.Tensor:
    with torch.no_grad():
        return _relu_mlp_forward(LINEARS, W, b, x_val, W[0].shape[0])[2].argmax(-1)


def median_us(call: Callable[[], object], rounds: int, calls: int) -> float:
    """Microseconds per call: the median over ``rounds`` of ``calls`` calls in a row (after one warm call)."""
    call()
    return timed(lambda: [call() for _ in range(calls)], rounds) / calls * 1e6


def one_hot_rows(rows: int, generator: torch.Generator) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.randint(0, 10, (rows,), generator=generator), 10).float()


def rejection_us(copies: int, rounds: int, calls: int) -> float:
    """Microseconds per rejection step of ``copies`` candidates at once (each on 64 raw predictions)."""
    fit = RejectionFit(copies, one_hot_rows(REJECTION_ROWS, torch.Generator().manual_seed(3)))
    return median_us(fit.step, rounds, calls)


def pieces(copies: int, rounds: int, calls: int) -> dict[str, float]:
    """Microseconds per training step, meta-iteration, rejection step and validation pass of ``copies``."""
    generator = torch.Generator().manual_seed(2)
    W, b = mlp(copies)
    x, x_val = torch.randn(BATCH, SIZES[0], generator=generator), torch.randn(BATCH, SIZES[0], generator=generator)
    one_hot, rows = one_hot_rows(BATCH, generator), torch.randn(VAL_ROWS, SIZES[0], generator=generator)
    W_train, b_train = [w.clone() for w in W], [c.clone() for c in b]
    return {
        "train step": median_us(lambda: train_step(W_train, b_train, x, one_hot), rounds, calls),
        "meta-iteration": median_us(lambda: meta_iteration(W, b, x, one_hot, x_val, one_hot), rounds, calls),
        "rejection step": rejection_us(copies, rounds, calls),
        "validation pass": median_us(lambda: validation_pass(W, b, rows), rounds, calls),
    }


def package_pieces(copies: int, rounds: int, calls: int) -> dict[str, float]:
    """Microseconds per training step and meta-iteration of the package itself (``bench_meta_gradient``'s
    problem: its first ``copies`` trees, the same MLP and batch), for the ratio to the bare passes."""
    stacked, params, losses, weights, train, val = problem(copies, torch.float32)
    generator = torch.Generator().manual_seed(1)
    data = (torch.randn(1077, SIZES[0], generator=generator), torch.randint(0, 10, (1077,), generator=generator))
    steps = 50

    def training():
        package_training_steps(stacked, params, losses, weights, data, steps, False)

    def meta():
        package_meta_gradient(stacked, params, losses, weights, train, val)

    return {
        "train step": median_us(training, rounds, max(calls // steps, 1)) / steps,
        "meta-iteration": median_us(meta, rounds, calls),
    }


def flop_counts(copies: int) -> dict[str, float]:
    """Floating-point operations (multiply-adds count two) of the matrix products in each piece."""
    layers = list(zip(SIZES[:-1], SIZES[1:]))
    forward = sum(2 * BATCH * i * o for i, o in layers)
    backward = sum(2 * BATCH * i * o for i, o in layers) + sum(2 * BATCH * i * o for i, o in layers[1:])
    tangent = forward + sum(2 * BATCH * i * o for i, o in layers[1:])
    return {
        "train step": copies * (forward + backward),
        "meta-iteration": copies * (2 * (forward + backward) + tangent),
        "rejection step": 0.0,  # element-wise only
        "validation pass": copies * forward * VAL_ROWS / BATCH,
    }


def matmul_rate(rounds: int) -> float:
    """GFLOP/s of one 512 x 512 x 512 float32 matrix product on this thread (the core's rate for large shapes)."""
    a, c = torch.randn(512, 512), torch.randn(512, 512)
    return 2 * 512**3 / median_us(lambda: a @ c, rounds, 50) / 1e3


def per_candidate(us: dict[str, float], copies: int, rejection_copies: int, rejection_us: float) -> dict[str, float]:
    """Seconds per trained candidate: its share of a batch of ``copies`` (rejection over ``rejection_copies``)."""
    trained = META_ITERATIONS * us["meta-iteration"] + TRAIN_STEPS * us["train step"] + us["validation pass"]
    rejection = REJECTION_STEPS * rejection_us / rejection_copies
    return {"rejection": rejection / 1e6, "trained": (trained / copies) / 1e6 + rejection / 1e6}


def check() -> tuple[float, float]:
    """In float64, ``-lr * meta_iteration`` against autograd's dV/dw for the loss ``w * cross-entropy`` at w = 1:
    the relative difference and autograd's value (the bare form computes the model's share exactly)."""
    generator = torch.Generator().manual_seed(4)
    W, b = (list(map(torch.Tensor.double, part)) for part in mlp(1))
    x, x_val = (torch.randn(BATCH, SIZES[0], generator=generator, dtype=torch.float64) for _ in range(2))
    labels, labels_val = (torch.randint(0, 10, (BATCH,), generator=generator) for _ in range(2))
    one_hot, one_hot_val = (torch.nn.functional.one_hot(y, 10).double() for y in (labels, labels_val))
    bare = -LR * meta_iteration(W, b, x, one_hot, x_val, one_hot_val)[0]
    w = torch.ones((), dtype=torch.float64, requires_grad=True)
    theta = [p[0].clone().requires_grad_(True) for p in W + b]

    def logits(params, rows):
        h = rows
        for i in range(len(LINEARS)):
            h = h @ params[i].T + params[len(LINEARS) + i]
            h = h.relu() if i < len(LINEARS) - 1 else h
        return h

    inner = w * torch.nn.functional.cross_entropy(logits(theta, x), labels)
    grads = torch.autograd.grad(inner, theta, create_graph=True)
    outer = torch.nn.functional.cross_entropy(logits([p - LR * g for p, g in zip(theta, grads)], x_val), labels_val)
    (expected,) = torch.autograd.grad(outer, [w])
    return abs((bare - expected) / expected).item(), expected.item()


def at_rate(flops: dict[str, float], rate: float) -> dict[str, float]:
    """Microseconds of each piece's arithmetic at ``rate`` GFLOP/s."""
    return {name: value / rate / 1e3 for name, value in flops.items()}


def floors(one: dict, many: dict, rejection_batch: float, copies: int, population: int, share: float) -> list[float]:
    """Seconds per tree one at a time, per trained candidate in batches of ``copies``, per evaluated candidate."""
    alone = per_candidate(one, 1, 1, one["rejection step"])
    batched = per_candidate(many, copies, population, rejection_batch)
    return [alone["trained"], batched["trained"], share * batched["trained"] + (1 - share) * batched["rejection"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batch-copies", type=int, default=7, help="survivors trained together per batch")
    parser.add_argument("--population", type=int, default=25, help="candidates in one rejection fit")
    parser.add_argument("--trained-share", type=float, default=80 / 184, help="evaluated candidates that train")
    parser.add_argument("--ref-per-tree", type=float, default=1.48, help="reference s per fixed tree")
    parser.add_argument("--ref-per-evaluated", type=float, default=1.08, help="reference s per evaluated candidate")
    parser.add_argument("--ref-per-trained", type=float, default=1.77, help="reference s per trained candidate")
    parser.add_argument("--ours-per-tree", type=float, default=0.66, help="our s per fixed tree, one at a time")
    parser.add_argument("--ours-per-evaluated", type=float, default=0.21, help="our s per evaluated candidate")
    parser.add_argument("--ours-per-trained", type=float, default=0.45, help="our s per trained candidate")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # as the command line does: freed tensors' memory is reused, not faulted in again
    print(f"torch {torch.__version__}, 1 thread, load average at start {os.getloadavg()}")
    rate = matmul_rate(args.rounds)
    difference, value = check()
    print(f"the bare meta-iteration against autograd (float64, w * cross-entropy): dV/dw {value:.6e}, relative "
          f"difference {difference:.1e}")  # fmt: skip
    print(f"one 512^3 float32 matrix product: {rate:.1f} GFLOP/s")
    one, many = pieces(1, args.rounds, args.calls), pieces(args.batch_copies, args.rounds, args.calls)
    rejection_batch = rejection_us(args.population, args.rounds, args.calls)
    for copies, us in ((1, one), (args.batch_copies, many)):
        flops = flop_counts(copies)
        for name, value in us.items():
            mflop, arithmetic = flops[name] / 1e6, flops[name] / rate / 1e3
            print(f"K={copies:<2d} {name:16s} {value:8.1f} us bare ({mflop:6.2f} MFLOP: {arithmetic:7.1f} us at that rate)")  # fmt: skip  # noqa: E501
    for copies in (1, len(TREES)):
        package, floor = package_pieces(copies, args.rounds, args.calls), pieces(copies, args.rounds, args.calls)
        for name, value in package.items():
            print(f"K={copies:<2d} {name:16s} the package {value:8.1f} us, {value / floor[name]:.2f}x the bare passes")
    share, k = args.trained_share, args.batch_copies
    bare = floors(one, many, rejection_batch, k, args.population, share)
    arithmetic = floors(*(at_rate(flop_counts(c), rate) for c in (1, k)), 0.0, k, args.population, share)
    print("floors at the paper preset's counts (bare calls; the arithmetic alone), and each side's figure (given):")
    rows = (
        ("per tree, one at a time", args.ours_per_tree, args.ref_per_tree),
        (f"per trained candidate, K={k}", args.ours_per_trained, args.ref_per_trained),
        (f"per evaluated candidate, {share:.1%} trained", args.ours_per_evaluated, args.ref_per_evaluated),
    )
    for (label, ours, reference), floor, least in zip(rows, bare, arithmetic):
        print(f"  {label:40s} floor {floor:.3f} s ({least:.3f} s) | ours {ours:.2f} s, {ours / floor:.1f}x "
              f"({ours / least:.1f}x) | reference {reference:.2f} s, {reference / floor:.1f}x ({reference / least:.1f}x)")  # fmt: skip  # noqa: E501
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
