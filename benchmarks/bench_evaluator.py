"""Benchmark: population-batched vs one-by-one training of candidate losses.

Measures, in one run and side by side, the two expensive phases of the
evaluator on ``digits`` with the task's MLP (64-100-100-10):

* **partial training** (:func:`evomal_sr.training.loop.train_candidates`): the
  candidates trained one after another (``K = 1`` each) and all at once
  (``K = candidates``), reported as candidate-training-steps per second;
* **local search** (:func:`evomal_sr.training.local_search.local_search`, unrolled
  differentiation), likewise as candidate-meta-iterations per second;

and, optionally (``--paper``), the evaluator's time per candidate at the
``paper`` preset's per-candidate settings on one random, unscreened generation
(design.md section 8 quotes 2.68 s for the EvoMAL reference code on a 2-core
machine), the paper-search estimate derived from it (seconds per generation at
population 25), and the side-by-side harness's three fixed trees evaluated one
at a time and as one batch (seconds per tree).

Candidates are random trees from the native engine's grammar (ramped
half-and-half, heights 2-4, repaired), kept only if their probe gradients are
finite and they pass the rejection protocol, i.e. the ones the evaluator would
actually train. Steps are counted as the steps each candidate really took (a
candidate that diverges stops counting, while the batch still pays for it), so
the batched figure is, if anything, understated. Each phase runs ``--repeat``
interleaved rounds (unbatched, batched, unbatched, ...) and reports the best
round of each mode and the range, since other processes may share the CPUs.

Usage::

    python benchmarks/bench_evaluator.py                      # defaults: 25 candidates, 50 steps, 3 rounds
    python benchmarks/bench_evaluator.py --threads 1 --steps 200
    python benchmarks/bench_evaluator.py --paper               # adds the per-candidate evaluator time
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_evaluator.py  # when other processes share the CPUs

On a CPU shared with other busy processes, OpenMP's default spin-waiting makes
every small parallel op wait for a descheduled thread (10-100x slower, mostly
hurting the unbatched path); ``OMP_WAIT_POLICY=PASSIVE`` or ``--threads 1``
avoids that for the two phase measurements. The evaluator itself (``--paper``)
needs neither: it runs small models with one torch thread
(:mod:`evomal_sr.core.threads`).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def random_trees(n: int, rng: random.Random) -> list:
    """``n`` random repaired expressions, as the native engine's first generation draws them."""
    from deap import gp

    from evomal_sr.engines.native import LossGrammar, scoped_random

    grammar = LossGrammar()
    with scoped_random(rng):
        trees = [gp.genHalfAndHalf(grammar.pset, 2, 4) for _ in range(n)]
    return [grammar.to_expression(tree).repair(rng) for tree in trees]


def random_candidates(n: int, task, settings, seed: int) -> list[str]:
    """``n`` distinct random candidates that the evaluator would train (screened)."""
    from evomal_sr.losses.symbolic import CompiledLoss
    from evomal_sr.training.screening import ProbePoints, probe_gradients, rejection_protocol

    rng = random.Random(seed)
    probes = ProbePoints(kind=task.kind, n_outputs=task.n_outputs, n_points=16, seed=seed)
    chosen: list[str] = []
    seen: set[str] = set()
    rows = torch.randperm(task.y_train.shape[0], generator=torch.Generator().manual_seed(seed))
    targets = task.y_train[rows[: settings.rejection_batch]]
    while len(chosen) < n:
        pool = []
        for expr in random_trees(4 * n, rng):
            if str(expr) in seen:
                continue
            seen.add(str(expr))
            loss = CompiledLoss(expr)
            if torch.isfinite(probe_gradients(loss, probes)).all():
                pool.append(loss)
        if not pool:
            continue
        passed = rejection_protocol(
            pool,
            kind=task.kind,
            targets=targets,
            n_outputs=task.n_outputs,
            steps=settings.rejection_steps,
            lr=settings.rejection_lr,
            margin=settings.rejection_margin,
            seed=seed,
        )
        chosen += [str(loss.expression) for loss, ok in zip(pool, passed.tolist()) if ok]
    return chosen[:n]


def bench_training(stacked, losses, data, *, kind, steps, lr, batch_size, device, batched, seed=0):
    """Seconds and candidate-steps done training ``losses`` (all together or one by one)."""
    from evomal_sr.training.loop import BatchSampler, train_candidates
    from evomal_sr.training.stacked import StackedModel

    init = stacked.initial_params()
    groups = [list(range(len(losses)))] if batched else [[i] for i in range(len(losses))]
    done = 0
    tick = time.perf_counter()
    for group in groups:
        params = StackedModel.replicate(init, len(group))
        width = max(max(losses[i].n_weights for i in group), 1)
        weights = torch.ones(len(group), width, device=device)
        sampler = BatchSampler(data[0].shape[0], batch_size, seed)
        outcome = train_candidates(
            stacked, params, [losses[i] for i in group], weights, data, kind=kind, steps=steps, lr=lr, sampler=sampler
        )
        done += int(outcome.steps_done.sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tick, done


def bench_local_search(stacked, losses, task, *, iterations, settings, device, batched, seed=0):
    """Seconds and candidate-meta-iterations of local search (all together or one by one)."""
    from evomal_sr.training.local_search import local_search

    inits = {}

    def init_params(i):
        if i not in inits:
            model = task.make_model(seed=1000 + i)
            inits[i] = {k: v.detach().to(device) for k, v in model.named_parameters()}
        return inits[i]

    for i in range(iterations):  # model construction is not what is measured
        init_params(i)
    train = (task.X_train.to(device), task.y_train.to(device))
    val = (task.X_val.to(device), task.y_val.to(device))
    groups = [list(range(len(losses)))] if batched else [[i] for i in range(len(losses))]
    tick = time.perf_counter()
    for group in groups:
        width = max(max(losses[i].n_weights for i in group), 1)
        weights = torch.ones(len(group), width, device=device)
        local_search(
            stacked,
            [losses[i] for i in group],
            weights,
            init_params=init_params,
            train_data=train,
            val_data=val,
            kind=task.kind,
            iterations=iterations,
            meta_lr=settings.meta_lr,
            lr=settings.lr,
            inner_steps=settings.inner_steps,
            batch_size=settings.batch_size,
            seed=seed,
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tick, iterations * len(losses)


def plain_cross_entropy_loop(task, device, steps=500, batch_size=128, lr=0.01) -> float:
    """Seconds of a plain PyTorch SGD loop with cross-entropy (design.md: 0.41 s for the reference)."""
    from evomal_sr.training.loop import BatchSampler

    net = task.make_model(seed=0).to(device)
    X, y = task.X_train.to(device), task.y_train.to(device)
    sampler = BatchSampler(X.shape[0], batch_size, 0)
    tick = time.perf_counter()
    for _ in range(steps):
        index = sampler.next().to(device)
        loss = torch.nn.functional.cross_entropy(net(X[index]), y[index])
        grads = torch.autograd.grad(loss, list(net.parameters()))
        with torch.no_grad():
            for p, g in zip(net.parameters(), grads):
                p.sub_(g * lr)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tick


def paper_per_candidate(task, candidates, device, seed=0) -> dict:
    """Evaluator seconds per candidate at the ``paper`` per-candidate settings."""
    from evomal_sr.scoring.evaluator import Evaluator

    ev = Evaluator(task, preset="paper", device=str(device), seed=seed)
    tick = time.perf_counter()
    results = ev.evaluate(candidates)
    seconds = time.perf_counter() - tick
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"seconds": seconds, "per_candidate": seconds / len(candidates), "statuses": statuses}


#: The side-by-side harness's fixed trees (../shared/bench/sidebyside): cross-entropy, squared
#: error and a 12-node tree combining them.
FIXED_TREES = ("-(y * log(fx))", "square(y - fx)", "(-(y * log(fx)) + tanh(square(y - fx)))")


def fixed_trees(task, device, seed=0) -> dict:
    """Evaluator seconds per tree at the paper preset: the fixed trees one at a time and as one batch."""
    from evomal_sr.scoring.evaluator import Evaluator

    figures = {}
    for label, batched in (("one at a time", False), ("batch of 3", True)):
        ev = Evaluator(task, preset="paper", device=str(device), seed=seed, batched=batched)
        tick = time.perf_counter()
        results = ev.evaluate(list(FIXED_TREES))
        figures[label] = (time.perf_counter() - tick) / len(FIXED_TREES)
        figures[label + " statuses"] = sorted({str(r.status) for r in results})
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per candidate (default 50)")
    parser.add_argument(
        "--meta-iterations",
        type=int,
        default=None,
        help="local-search meta-iterations per candidate (default: steps / 4)",
    )
    parser.add_argument("--candidates", type=int, default=25, help="number of random candidates (default 25)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random candidates")
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds of both modes; the best round counts (default 3)"
    )
    parser.add_argument(
        "--paper", action="store_true", help="also time the evaluator per candidate at the paper preset's settings"
    )
    parser.add_argument(
        "--paper-candidates", type=int, default=None, help="candidates for --paper (default: --candidates)"
    )
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    import evomal_sr as es
    from evomal_sr.core.devices import resolve_device
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.losses.symbolic import CompiledLoss
    from evomal_sr.training.stacked import StackedModel

    device = resolve_device(args.device)
    settings = resolve_preset("paper")
    task = es.Task.builtin("digits", seed=0)
    candidates = random_candidates(args.candidates, task, settings, args.seed)
    losses = [CompiledLoss(es.Expression.parse(c)) for c in candidates]
    stacked = StackedModel(task.make_model(seed=0).to(device))
    data = (task.X_train.to(device), task.y_train.to(device))
    meta_iterations = args.meta_iterations or max(args.steps // 4, 2)
    kw = dict(kind=task.kind, lr=settings.lr, batch_size=settings.batch_size, device=device)

    print(
        f"evomal-sr evaluator benchmark: digits, MLP 64-100-100-10, {len(losses)} random candidates, "
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; the evaluator (--paper) runs with "
        "threads='auto', one thread on CPU for this model"
    )
    sizes = [loss.expression.size for loss in losses]
    print(f"candidate sizes: min {min(sizes)}, mean {sum(sizes) / len(sizes):.1f}, max {max(sizes)}")
    # warm up both paths (lazy imports, allocator, first-call dispatch), not measured
    bench_training(stacked, losses[:2], data, steps=3, batched=True, **kw)
    bench_training(stacked, losses[:1], data, steps=3, batched=False, **kw)
    warm = [CompiledLoss(es.Expression.parse(task.baseline_expression)), *losses[:1]]  # log -> abs: dynamo import
    bench_local_search(stacked, warm, task, iterations=2, settings=settings, device=device, batched=True)

    rows = []
    phases = (("partial training", "candidate-steps/s"), ("local search", "candidate-meta-its/s"))
    for phase, unit in phases:
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):  # interleaved rounds: a burst of load hits both modes alike
            for batched in (False, True):
                if phase == "partial training":
                    seconds, work = bench_training(stacked, losses, data, steps=args.steps, batched=batched, **kw)
                else:
                    seconds, work = bench_local_search(
                        stacked,
                        losses,
                        task,
                        iterations=meta_iterations,
                        settings=settings,
                        device=device,
                        batched=batched,
                    )
                rates[batched].append(work / seconds)
        for batched in (False, True):
            label = f"batched (K={len(losses)})" if batched else f"unbatched (K=1 x {len(losses)})"
            best, worst = max(rates[batched]), min(rates[batched])
            print(
                f"  {phase:16s} {label:22s} best {best:9.1f} {unit}  (range {worst:.1f}-{best:.1f}, "
                f"{args.repeat} rounds, {work} per round)"
            )
        ratio = max(rates[True]) / max(rates[False])
        per_round = [b / u for u, b in zip(rates[False], rates[True])]
        rows.append((phase, ratio))
        print(
            f"  {phase:16s} batched / unbatched ratio: {ratio:.2f}x (best vs best; per round "
            f"{min(per_round):.2f}-{max(per_round):.2f}x)"
        )
    if args.paper:
        n = args.paper_candidates or len(candidates)
        population = [str(e) for e in random_trees(n, random.Random(args.seed + 1))]
        print(
            f"paper preset (250 meta-iterations, 500 training steps, 250 rejection steps): a random generation "
            f"of {n} unscreened candidates, one batch, fresh evaluator (no cache hits from earlier generations)"
        )
        print(
            f"  plain 500-step cross-entropy loop of the MLP: {plain_cross_entropy_loop(task, device):.2f} s "
            "(reference machine: 0.41 s)"
        )
        report = paper_per_candidate(task, population, device)
        print(
            f"  evaluator: {report['seconds']:.1f} s, {report['per_candidate']:.3f} s per candidate "
            f"(reference EvoMAL code: 2.68 s per candidate); statuses {report['statuses']}"
        )
        per_generation = report["per_candidate"] * 25
        print(
            f"  paper-search estimate: {per_generation:.1f} s per generation at population 25, so about "
            f"{per_generation * 50 / 60:.1f} min for 25 x 50 (from a random first generation: later ones train "
            "more survivors but also reuse cached and gradient-equivalent candidates)"
        )
        fixed = fixed_trees(task, device)
        print(
            f"  fixed trees ({', '.join(FIXED_TREES)}): {fixed['one at a time']:.2f} s per tree one at a time, "
            f"{fixed['batch of 3']:.2f} s per tree as a batch of 3 (statuses {fixed['one at a time statuses']}; "
            "the reference EvoMAL code: see ../shared/bench/sidebyside)"
        )
    print("summary: " + ", ".join(f"{phase} ratio {ratio:.2f}x" for phase, ratio in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
