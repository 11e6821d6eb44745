"""Two CPU ideas for the paper preset's hot path, measured and not kept (``PERFORMANCE.md``, eighth session).

1. **Softmax over a last axis of ten classes.** torch's CPU kernel for a contiguous last axis shorter than
   one vector register sums each row lane by lane (``vec_reduce_all``'s slow path), so ``torch.softmax``
   of ``[20, 128, 10]`` costs about ten times the same softmax over a transposed layout; the bits differ.
2. **A meta-gradient that shares the initialisation.** Every candidate of a meta-iteration starts from the
   same parameters and minibatch, so the training forward can run once and the inner gradients of all
   candidates come from one matrix product per layer; one SGD step then gives
   ``d outer / d w = -lr d/dw <dL/dz (w), J g_val>`` with ``J g_val`` a forward-mode product at the shared
   parameters (plain ``Linear``/``ReLU`` MLPs only). It is compared with
   :func:`~evomal_sr.training.local_search.unrolled_meta_gradient` on the paper preset's digits MLP.

3. **The bias folded into the batched product** (fourteenth session): ``torch.baddbmm(bias, h, W^T)`` in place
   of the stacked MLP's ``torch.bmm(h, W^T) + bias``, one training step (forward, loss, backward) of the
   digits MLP at one copy (one candidate at a time, where the side-by-side's 3x target is missed).

With ``--profile-generations N`` it first profiles ``N`` generations of the paper search on digits with
``torch.profiler`` and prints the operators' shares of the self CPU time (what the two ideas aim at).

    python benchmarks/bench_cpu_kernels.py [--candidates 12 20] [--repeats 20] [--profile-generations 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_evaluator import random_candidates  # noqa: E402

import evomal_sr as es  # noqa: E402
from evomal_sr.core.presets import resolve_preset  # noqa: E402
from evomal_sr.grammar.expression import Expression  # noqa: E402
from evomal_sr.losses.base import same_targets  # noqa: E402
from evomal_sr.losses.symbolic import CompiledLoss  # noqa: E402
from evomal_sr.training.local_search import unrolled_meta_gradient  # noqa: E402
from evomal_sr.training.loop import CandidateLosses  # noqa: E402
from evomal_sr.training.metrics import task_loss  # noqa: E402
from evomal_sr.training.stacked import StackedModel  # noqa: E402


def per_call_us(fn, repeats: int) -> float:
    fn()
    tick = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - tick) / repeats * 1e6


def softmax_rows(repeats: int) -> None:
    x = torch.randn(20, 128, 10, generator=torch.Generator().manual_seed(0))
    last = per_call_us(lambda: torch.softmax(x, -1), repeats)
    moved = per_call_us(lambda: torch.softmax(x.transpose(-1, -2).contiguous(), -2).transpose(-1, -2), repeats)
    same = torch.equal(torch.softmax(x, -1), torch.softmax(x.transpose(-1, -2).contiguous(), -2).transpose(-1, -2))
    print(f"softmax [20, 128, 10]: last axis {last:.0f} us, transposed {moved:.0f} us ({last / moved:.1f}x); "
          f"bit-identical: {same}")  # fmt: skip


def _mm_shared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a [B, i]`` times each ``b[k] [o, i]`` transposed -> ``[K, B, o]``, as one matrix product."""
    return (a @ b.reshape(-1, b.shape[-1]).T).reshape(a.shape[0], b.shape[0], -1).transpose(0, 1)


def shared_init_meta_gradient(stacked, init, losses, weights, batches, lr):
    """The one-step meta-gradient of a Linear-ReLU-Linear-ReLU-Linear classifier from the shared ``init``."""
    (x, y), (x_val, y_val) = batches
    names = list(init)
    W1, b1, W2, b2, W3, b3 = (init[n] for n in names)
    K = len(losses)
    with torch.no_grad():  # the training forward, once for every candidate
        a1 = torch.addmm(b1, x, W1.T)
        a2 = torch.addmm(b2, a1.relu(), W2.T)
        z = torch.addmm(b3, a2.relu(), W3.T)
    h1, h2, m1, m2 = a1.relu(), a2.relu(), (a1 > 0).to(z.dtype), (a2 > 0).to(z.dtype)
    w = weights.detach().requires_grad_(True)
    zs = z.unsqueeze(0).expand(K, *z.shape).detach().requires_grad_(True)
    values = CandidateLosses(losses, w, "classification").per_copy(zs, same_targets(y, K))
    (c,) = torch.autograd.grad(values.sum(), zs, create_graph=True)  # dL/dz, differentiable in w
    with torch.no_grad():  # every candidate's inner gradient, one product per layer and kind
        cd, B = c.detach(), x.shape[0]
        d2 = (cd.reshape(K * B, -1) @ W3).reshape(K, B, -1) * m2
        d1 = (d2.reshape(K * B, -1) @ W2).reshape(K, B, -1) * m1
        grads = [torch.einsum("kbo,bi->koi", d, a) for d, a in ((d1, x), (d2, h1), (cd, h2))]
        biases = [d.sum(1) for d in (d1, d2, cd)]
    inner = [grads[0], biases[0], grads[1], biases[1], grads[2], biases[2]]
    theta = {n: (init[n].unsqueeze(0) - lr * g).requires_grad_(True) for n, g in zip(names, inner)}
    outer = task_loss(stacked(theta, x_val), y_val, "classification")
    gW1, gb1, gW2, gb2, gW3, gb3 = torch.autograd.grad(outer.sum(), list(theta.values()))
    with torch.no_grad():  # J g_val at the shared parameters, every candidate's tangent at once
        s1 = (_mm_shared(x, gW1) + gb1.unsqueeze(1)) * m1
        s2 = ((s1.reshape(K * B, -1) @ W2.T).reshape(K, B, -1) + _mm_shared(h1, gW2) + gb2.unsqueeze(1)) * m2
        v = (s2.reshape(K * B, -1) @ W3.T).reshape(K, B, -1) + _mm_shared(h2, gW3) + gb3.unsqueeze(1)
    (meta,) = torch.autograd.grad((c * v).sum(), [w])
    return outer.detach(), -lr * meta


def meta_rows(candidates: list[int], repeats: int) -> None:
    task, settings = es.Task.builtin("digits", seed=0), resolve_preset("paper")
    model = task.make_model(seed=0)
    stacked, init = StackedModel(model), {k: v.detach() for k, v in model.named_parameters()}
    generator = torch.Generator().manual_seed(1)
    rows = torch.randperm(task.X_train.shape[0], generator=generator)[:128]
    val = torch.randperm(task.X_val.shape[0], generator=generator)[:128]
    batches = ((task.X_train[rows], task.y_train[rows]), (task.X_val[val], task.y_val[val]))
    pool = random_candidates(max(candidates), task, settings, seed=0)
    for K in candidates:
        losses = [CompiledLoss(Expression.parse(t)) for t in pool[:K]]
        width = max(loss.n_weights for loss in losses)
        weights = torch.ones(K, width) + 1e-3 * torch.randn(K, width, generator=torch.Generator().manual_seed(0))

        def current(weights=weights, losses=losses, K=K):
            params = StackedModel.replicate(init, K)
            return unrolled_meta_gradient(
                stacked, params, losses, weights, *batches, kind="classification", lr=settings.lr
            )[:2]

        def shared(weights=weights, losses=losses):
            return shared_init_meta_gradient(stacked, init, losses, weights, batches, settings.lr)

        (o1, g1), (o2, g2) = current(), shared()
        rel = float((g1 - g2).abs().max() / g1.abs().max())
        times = [(per_call_us(current, repeats), per_call_us(shared, repeats)) for _ in range(3)]
        cells = ", ".join(f"{a / 1e3:.1f} / {b / 1e3:.1f} ms ({a / b:.2f}x)" for a, b in times)
        print(f"K = {K}: unrolled / shared-init per meta-iteration, 3 rounds: {cells}; "
              f"outer equal {torch.equal(o1, o2)}, meta-gradient max relative difference {rel:.1e}")  # fmt: skip


def _mlp(params: list[torch.Tensor], x: torch.Tensor, fused: bool) -> torch.Tensor:
    """The stacked digits MLP (``[K, o, i]`` weights, ``[K, o]`` biases) on a shared batch, either way."""
    h = x.expand(params[0].shape[0], *x.shape)
    for layer in range(3):
        weight, bias = params[2 * layer], params[2 * layer + 1]
        if fused:
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        else:
            h = torch.bmm(h, weight.transpose(1, 2)) + bias.unsqueeze(1)
        h = h.relu() if layer < 2 else h
    return h


def bias_rows(repeats: int) -> None:
    task = es.Task.builtin("digits", seed=0)
    model = task.make_model(seed=0)
    params = [v.detach().unsqueeze(0).clone().requires_grad_(True) for v in model.parameters()]
    x, y = task.X_train[:128], task.y_train[:128]

    def step(fused: bool):
        out = _mlp(params, x, fused)
        loss = torch.nn.functional.cross_entropy(out[0], y)
        return out, torch.autograd.grad(loss, params)

    (o1, g1), (o2, g2) = step(False), step(True)
    same = torch.equal(o1, o2) and all(torch.equal(a, b) for a, b in zip(g1, g2))
    times = [(per_call_us(lambda: step(False), repeats), per_call_us(lambda: step(True), repeats)) for _ in range(3)]
    cells = ", ".join(f"{a:.0f} / {b:.0f} us ({a / b:.3f}x)" for a, b in times)
    print(f"one training step, K = 1: bmm + bias / baddbmm, 3 rounds: {cells}; bit-identical: {same}")


def profile_rows(generations: int) -> None:
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    search = es.LossSearch(preset="paper", seed=0, generations=generations, out_dir=tempfile.mkdtemp(), verbose=0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        search.set_params(force=True).fit(es.Task.builtin("digits", seed=0))
    ops = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ops)
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:8]:
        print(f"{e.key:55s} {100 * e.self_cpu_time_total / total:5.1f}% of self CPU time, {e.count} calls")
    softmax = sum(e.self_cpu_time_total for e in ops if "softmax" in e.key.lower())
    print(f"softmax kernels (forward, backward) {100 * softmax / total:.1f}%; profiled {total / 1e6:.1f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[12, 20])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile-generations", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.profile_generations:
        profile_rows(args.profile_generations)
    softmax_rows(args.repeats * 10)
    bias_rows(args.repeats * 50)
    meta_rows(args.candidates, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
