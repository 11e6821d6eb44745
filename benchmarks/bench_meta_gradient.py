"""The local search's meta-gradient by double backward (the package's) against forward-mode alternatives.

For one inner SGD step (the ``paper`` and ``standard`` presets) the meta-gradient of the validation
loss ``V(theta - lr * g(w))``, with ``g = dL(theta, w)/dtheta``, is

    dV/dw = -lr * d/dw [ v . g(w) ],   v = dV/dtheta' at theta' = theta - lr * g,

and ``v . g(w) = sum(dL/dfx * J_theta(fx) v)``: a Jacobian-vector product of the model and one
derivative of the loss tree, so the model's backward need not be differentiated a second time.
This script measures whether that is faster than the package's double backward
(:func:`evomal_sr.training.local_search.unrolled_meta_gradient`), with the JVP computed two ways:

* ``jvp``: ``torch.func.jvp`` over the stacked model (any model without buffers);
* ``tangent``: the tangent propagated by hand through the MLP's layers, reusing the forward's
  activations (ReLU MLPs only).

Both are checked against the package's meta-gradient in float64, then timed in float32 on one thread,
the three interleaved over rounds (medians), on the digits MLP 64-100-100-10 at batch 128.

    python benchmarks/bench_meta_gradient.py [--rounds 5] [--calls 200]

Measured in ``benchmarks/PERFORMANCE.md``; neither alternative was kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.func import jvp

from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.local_search import unrolled_meta_gradient
from evomal_sr.training.loop import CandidateLosses
from evomal_sr.training.metrics import task_loss
from evomal_sr.training.stacked import StackedModel

TREES = ["-(y*log(fx))", "square(fx - y)", "-(y*log(fx + 0.1))*abs(fx-y)", "sqrt(abs(fx - y))", "-(log(fx*y + 0.5))"]
KIND, LR = "classification", 0.01


def _loss_gradient_and_step(stacked, params, losses, weights, train_batch, val_batch, forward):
    """The shared part: dL/dfx kept differentiable in ``w``, the plain SGD step, and ``v`` at theta'."""
    w = weights.detach().requires_grad_(True)
    theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    (x_tr, y_tr), (x_val, y_val) = train_batch, val_batch
    out, saved = forward(theta, x_tr)
    z = out.detach().requires_grad_(True)
    values = CandidateLosses(losses, w, KIND).per_copy(z, same_targets(y_tr, len(losses)))
    (dz,) = torch.autograd.grad(values.sum(), [z], create_graph=True)
    grads = torch.autograd.grad(out, list(theta.values()), dz.detach())
    with torch.no_grad():
        stepped = {k: (v - LR * g).requires_grad_(True) for (k, v), g in zip(theta.items(), grads)}
    outer = task_loss(stacked(stepped, x_val), y_val, KIND)
    tangents = dict(zip(theta, torch.autograd.grad(outer.sum(), list(stepped.values()))))
    return w, dz, tangents, saved, outer.detach()


def jvp_meta_gradient(stacked, params, losses, weights, train_batch, val_batch):
    """The meta-gradient with ``torch.func.jvp`` for ``J_theta(fx) v``."""

    def forward(theta, x):
        return stacked(theta, x), None

    shared = _loss_gradient_and_step(stacked, params, losses, weights, train_batch, val_batch, forward)
    w, dz, tangents, _, outer = shared
    primals = {k: v.detach() for k, v in params.items()}
    _, dfx = jvp(lambda th: stacked(th, train_batch[0]), (primals,), (tangents,))
    (grad,) = torch.autograd.grad((dz * dfx).sum(), [w])
    return outer, -LR * grad


def tangent_meta_gradient(stacked, params, losses, weights, train_batch, val_batch):
    """The meta-gradient with the MLP's tangent propagated by hand from the forward's activations."""
    layers = stacked._mlp  # the plain-MLP layer list StackedModel found (ReLU activations here)

    def forward(theta, x):
        h, inputs = x, []
        for layer in layers:
            inputs.append(h)
            if isinstance(layer, tuple):
                weight = theta[layer[0]]
                h = torch.bmm(h if h.ndim == 3 else h.expand(weight.shape[0], *h.shape), weight.transpose(1, 2))
                h = h + theta[layer[1]].unsqueeze(1)
            else:
                h = layer(h)
        return h, inputs

    w, dz, tangents, inputs, outer = _loss_gradient_and_step(
        stacked, params, losses, weights, train_batch, val_batch, forward
    )
    with torch.no_grad():
        dh = None
        for layer, h in zip(layers, inputs):
            if isinstance(layer, tuple):
                dweight = tangents[layer[0]]
                h = h if h.ndim == 3 else h.expand(dweight.shape[0], *h.shape)
                t = torch.bmm(h, dweight.transpose(1, 2)) + tangents[layer[1]].unsqueeze(1)
                dh = t if dh is None else t + torch.bmm(dh, params[layer[0]].transpose(1, 2))
            else:
                dh = torch.where(h > 0, dh, torch.zeros_like(dh))
    (grad,) = torch.autograd.grad((dz * dh).sum(), [w])
    return outer, -LR * grad


def package_meta_gradient(stacked, params, losses, weights, train_batch, val_batch):
    outer, grad, _ = unrolled_meta_gradient(stacked, params, losses, weights, train_batch, val_batch, kind=KIND, lr=LR)
    return outer, grad


METHODS = {"double-backward": package_meta_gradient, "jvp": jvp_meta_gradient, "tangent": tangent_meta_gradient}


def problem(copies: int, dtype: torch.dtype):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)
    ).to(dtype)
    stacked = StackedModel(net)
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES[:copies]]
    weights = 1 + 0.1 * torch.randn(copies, max(loss.n_weights for loss in losses), dtype=dtype)
    params = StackedModel.replicate(stacked.initial_params(), copies)
    train = (torch.randn(128, 64, dtype=dtype), torch.randint(0, 10, (128,)))
    val = (torch.randn(128, 64, dtype=dtype), torch.randint(0, 10, (128,)))
    return stacked, params, losses, weights, train, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load average at start {os.getloadavg()}")
    for copies in (1, len(TREES)):
        exact = problem(copies, torch.float64)
        _, reference = package_meta_gradient(*exact)
        for name, method in METHODS.items():
            _, grad = method(*exact)
            error = ((grad - reference).abs().max() / reference.abs().max()).item()
            print(f"K={copies} {name:15s} float64 max |difference| / max |meta-gradient| = {error:.1e}")
        case = problem(copies, torch.float32)
        times: dict[str, list[float]] = {name: [] for name in METHODS}
        for _ in range(args.rounds):
            for name, method in METHODS.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    method(*case)
                times[name].append((time.perf_counter() - start) / args.calls * 1e3)
        base = statistics.median(times["double-backward"])
        for name, values in times.items():
            median = statistics.median(values)
            ratio = base / median
            print(f"K={copies} {name:15s} {median:.3f} ms per meta-gradient (median of {args.rounds}), {ratio:.2f}x")


if __name__ == "__main__":
    main()
