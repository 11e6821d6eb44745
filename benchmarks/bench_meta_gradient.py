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
* ``by-hand`` (fifteenth session): every pass of the model written out, no autograd graph of the model
  at all: the training forward, the inner backward that makes ``theta'``, the validation forward and
  the cross-entropy's backward that makes ``v``, and the tangent ``J v``, as batched matrix products;
  autograd differentiates only the loss tree (twice: ``dL/dfx`` with a graph, then ``d/dw``). ReLU
  MLPs, one inner SGD step, classification.

Both are checked against the package's meta-gradient in float64, then timed in float32 on one thread,
the three interleaved over rounds (medians), on the digits MLP 64-100-100-10 at batch 128.

    python benchmarks/bench_meta_gradient.py [--rounds 5] [--calls 200]   # then the training step, both ways

Measured in ``benchmarks/PERFORMANCE.md`` (eleventh and fifteenth sessions); no alternative was kept.
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
from evomal_sr.training.loop import BatchSampler, CandidateLosses, train_candidates
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


def _relu_mlp_forward(linears, weights, biases, x, copies):
    """The layers' inputs and ReLU masks (floats) of a ReLU MLP, and its output, without autograd."""
    inputs, masks, h = [], [], x.expand(copies, *x.shape)
    for i in range(len(linears)):
        inputs.append(h)
        z = torch.baddbmm(biases[i].unsqueeze(1), h, weights[i].transpose(1, 2))
        if i < len(linears) - 1:
            masks.append((z > 0).to(z.dtype))
            h = z * masks[-1]
    return inputs, masks, z


def _relu_mlp_backward(weights, inputs, masks, d):
    """Every layer's weight and bias gradients for the output gradient ``d``, without autograd."""
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads_w[i], grads_b[i] = torch.bmm(d.transpose(1, 2), inputs[i]), d.sum(1)
        if i:
            d = torch.bmm(d, weights[i]) * masks[i - 1]
    return grads_w, grads_b


def _relu_mlp_tangent(weights, inputs, masks, v_w, v_b):
    """``J v`` at the weights of a ReLU MLP's forward (its layers' inputs and masks): the output's tangent along
    the parameter direction ``(v_w, v_b)``, layer by layer."""
    tangent = None
    for i in range(len(weights)):
        t = torch.baddbmm(v_b[i].unsqueeze(1), inputs[i], v_w[i].transpose(1, 2))
        tangent = t if tangent is None else t + torch.bmm(tangent, weights[i].transpose(1, 2))
        if i < len(weights) - 1:
            tangent = tangent * masks[i]
    return tangent


def by_hand_meta_gradient(stacked, params, losses, weights, train_batch, val_batch):
    """The meta-gradient with every pass of a ReLU MLP by hand; autograd sees only the loss tree."""
    linears = [layer for layer in stacked._mlp if isinstance(layer, tuple)]
    (x, y), (x_val, y_val) = train_batch, val_batch
    K = weights.shape[0]
    W, b = [params[name] for name, _ in linears], [params[name] for _, name in linears]
    with torch.no_grad():
        inputs, masks, z = _relu_mlp_forward(linears, W, b, x, K)
    w, z = weights.detach().requires_grad_(True), z.requires_grad_(True)
    values = CandidateLosses(losses, w, KIND).per_copy(z, same_targets(y, K))
    (dz,) = torch.autograd.grad(values.sum(), [z], create_graph=True)
    with torch.no_grad():
        grads_w, grads_b = _relu_mlp_backward(W, inputs, masks, dz.detach())
        W_new = [p - LR * g for p, g in zip(W, grads_w)]
        b_new = [p - LR * g for p, g in zip(b, grads_b)]
        val_inputs, val_masks, z_val = _relu_mlp_forward(linears, W_new, b_new, x_val, K)
        outer = task_loss(z_val, y_val, KIND)
        d_val = torch.softmax(z_val, -1) - torch.nn.functional.one_hot(y_val, z_val.shape[-1]).to(z_val.dtype)
        v_w, v_b = _relu_mlp_backward(W_new, val_inputs, val_masks, d_val / y_val.shape[0])
        tangent = _relu_mlp_tangent(W, inputs, masks, v_w, v_b)
    (grad,) = torch.autograd.grad((dz * tangent).sum(), [w])
    return outer, -LR * grad


def package_meta_gradient(stacked, params, losses, weights, train_batch, val_batch):
    outer, grad, _ = unrolled_meta_gradient(stacked, params, losses, weights, train_batch, val_batch, kind=KIND, lr=LR)
    return outer, grad


METHODS = {
    "double-backward": package_meta_gradient,
    "jvp": jvp_meta_gradient,
    "tangent": tangent_meta_gradient,
    "by-hand": by_hand_meta_gradient,
}


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


def training_steps(stacked, params, losses, weights, data, steps, by_hand):
    """``steps`` SGD steps at one copy: the package's ``train_candidates``, or every model pass by hand
    (autograd only for the loss tree's ``dL/dfx``, at a detached output); the same minibatches."""
    if not by_hand:
        sampler = BatchSampler(data[0].shape[0], 128, 0)
        options = dict(kind=KIND, steps=steps, lr=LR, sampler=sampler)
        return train_candidates(stacked, params, losses, weights, data, **options).params
    linears = [layer for layer in stacked._mlp if isinstance(layer, tuple)]
    W = [params[name].clone() for name, _ in linears]
    b = [params[name].clone() for _, name in linears]
    sampler, K = BatchSampler(data[0].shape[0], 128, 0), weights.shape[0]
    population = CandidateLosses(losses, weights, KIND, fixed_weights=True, binary_targets=True)
    for _ in range(steps):
        rows = sampler.next()
        with torch.no_grad():
            inputs, masks, z = _relu_mlp_forward(linears, W, b, data[0][rows], K)
        z.requires_grad_(True)
        (dz,) = torch.autograd.grad(population.per_copy(z, same_targets(data[1][rows], K)).sum(), [z])
        with torch.no_grad():
            grads_w, grads_b = _relu_mlp_backward(W, inputs, masks, dz)
            torch._foreach_sub_(W + b, torch._foreach_mul(grads_w + grads_b, LR))
    return W, b


def training_rows(rounds: int, steps: int = 500) -> None:
    """The partial training's step at one copy (the ``paper`` preset's 500 steps), both ways, interleaved."""
    stacked, params, losses, weights, _, _ = problem(1, torch.float32)
    generator = torch.Generator().manual_seed(1)
    data = (torch.randn(1077, 64, generator=generator), torch.randint(0, 10, (1077,), generator=generator))
    package = training_steps(stacked, params, losses, weights, data, steps, False)
    W, b = training_steps(stacked, params, losses, weights, data, steps, True)
    error = max(
        max((package[w] - x).abs().max().item(), (package[c] - y).abs().max().item())
        for (w, c), x, y in zip([layer for layer in stacked._mlp if isinstance(layer, tuple)], W, b)
    )
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for by_hand in (False, True):
            start = time.perf_counter()
            training_steps(stacked, params, losses, weights, data, steps, by_hand)
            times[by_hand].append((time.perf_counter() - start) / steps * 1e6)
    base, hand = statistics.median(times[False]), statistics.median(times[True])
    print(f"training step, K=1: package {base:.0f} us, by hand {hand:.0f} us ({base / hand:.2f}x, median of "
          f"{rounds}); parameters after {steps} steps differ by at most {error:.1e} (float32)")  # fmt: skip


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
    training_rows(args.rounds)


if __name__ == "__main__":
    main()
