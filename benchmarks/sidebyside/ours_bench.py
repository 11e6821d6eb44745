"""Time evomal-sr's evaluator per evaluated candidate at the `paper` preset's per-candidate settings.

Normally started by run.sh.  By hand, with the project's python (the one that has evomal-sr installed):
    .venv/bin/python benchmarks/sidebyside/ours_bench.py --seeds 0,1 --population 25 --generations 2 --out o.json

Task: es.Task.builtin("digits", seed=0) (60/20/20 stratified split, standardised), its MLP
64-100-100-10 ReLU.  Preset "paper": 250 local-search meta-iterations (Adam 1e-3, 1 inner SGD
step), rejection protocol (250 Adam steps on 64 raw predictions), partial training 500 SGD
steps lr 0.01 batch 128, validation error.

Passes:
  fixed   the same 3 trees as the reference side, one Evaluator.evaluate() call (one batch of
          3, as a search hands a generation over); then again one by one (batched=False)
  random  real searches: the native engine (DEAP ramped half-and-half, heights 2-4; EvoMAL's
          variation), LossSearch(preset="paper", population, generations, guesses=[]), one per
          seed; every Evaluator.evaluate() call is timed and its results recorded
"""

import argparse
import json
import os
import time

FIXED_TREES = [
    ("cross-entropy -(y*log(fx))", "-1.0 * (y * log(fx))"),  # node for node the reference's mul(-1, mul(y, log(fx)))
    ("square(y-fx)", "square(y - fx)"),
    ("12-node: -(y*log(fx)) + tanh(square(y-fx))", "(-1.0 * (y * log(fx))) + tanh(square(y - fx))"),
]
FRESH = ("ok", "diverged", "rejected")  # statuses of candidates actually scored in this call


def result_record(r):
    finite = r.fitness == r.fitness and abs(r.fitness) != float("inf")
    return {
        "expression": r.expression,
        "status": getattr(r.status, "value", r.status),
        "fitness": r.fitness if finite else None,
        "size": len(r.weights) + 1,
        "seconds": dict(r.seconds),
        "reason": r.reason,
    }


def _paper_settings(evaluator_cls, task):
    """The paper preset's settings as the evaluator resolves them (empty if not exposed)."""
    settings = getattr(evaluator_cls(task, preset="paper"), "settings", None)
    if settings is None:
        return {}
    if hasattr(settings, "to_dict"):
        return settings.to_dict()
    return dict(getattr(settings, "__dict__", {}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pass", dest="passes", default="fixed,random")
    p.add_argument("--seeds", default="0")
    p.add_argument("--population", type=int, default=25)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--dump-data", default=None, help="write the digits split tensors here and exit")
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()
    import evomal_sr as es

    device = os.environ.get("BENCH_DEVICE", "cpu")
    graph = os.environ.get("BENCH_CUDA_GRAPH", "0") == "1"
    Evaluator = es.Evaluator  # public name only: the package's module layout may change

    task = es.Task.builtin("digits", seed=0)
    if args.dump_data:
        torch.save(
            {f"{a}_{s}": getattr(task, f"{a}_{s}") for a in "Xy" for s in ("train", "val", "test")}, args.dump_data
        )
        return

    result = {
        "side": "ours",
        "device": device,
        "cuda_graph": graph,
        "evomal_sr": es.__version__,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "loadavg_start": load_at_start,
        "split": [len(task.y_train), len(task.y_val), len(task.y_test)],
        "passes": {},
    }
    t0 = time.perf_counter()
    if not args.no_warmup:  # first-call costs (lazy torch._dynamo import via torch.func, dispatch), not measured
        tw = time.perf_counter()
        ev = Evaluator(
            task, preset="paper", seed=12345, meta_iterations=3, train_steps=3, device=device, cuda_graph=graph
        )
        warm = ev.evaluate(
            [
                "-(y * log(fx))",
                "square(y - fx)",
                "abs(y - fx) + sign(fx) * tanh(y)",
                "aq(sqrt(square(fx - y)), max(y, fx))",
            ]
        )
        assert any(r.status == "ok" for r in warm), [r.status for r in warm]
        for batched in (True, False):  # both paths once: the local search and training actually ran
            Evaluator(
                task,
                preset="paper",
                seed=12345,
                meta_iterations=3,
                train_steps=3,
                device=device,
                cuda_graph=graph,
                batched=batched,
            ).evaluate(["-(y * log(fx))"])
        result["warmup_seconds"] = time.perf_counter() - tw

    calls = []
    original = Evaluator.evaluate

    def timed_evaluate(self, expressions):
        expressions = list(expressions)
        t = time.perf_counter()
        out = original(self, expressions)
        calls.append(
            {
                "wall": time.perf_counter() - t,
                "requested": len(expressions),
                "results": [result_record(r) for r in out],
                "batched": self.batched,
            }
        )
        return out

    Evaluator.evaluate = timed_evaluate
    for name in args.passes.split(","):
        calls.clear()
        if name == "fixed":
            texts = [t for _, t in FIXED_TREES]
            for batched in (True, False):
                Evaluator(task, preset="paper", seed=0, batched=batched, device=device, cuda_graph=graph).evaluate(
                    texts
                )
            res = {"calls": list(calls), "labels": [label for label, _ in FIXED_TREES]}
        elif name == "random":
            searches = []
            for seed in [int(s) for s in args.seeds.split(",")]:
                t = time.perf_counter()
                search = es.LossSearch(
                    engine="native",
                    preset="paper",
                    seed=seed,
                    population=args.population,
                    generations=args.generations,
                    guesses=[],
                    device=device,
                    cuda_graph=graph,
                ).fit(task)
                searches.append(
                    {
                        "seed": seed,
                        "wall": time.perf_counter() - t,
                        "generation_seconds": [h["seconds"] for h in search.history_],
                        "counters": dict(search.evaluator_.counters),
                    }
                )
            res = {"calls": list(calls), "searches": searches}
        else:
            raise SystemExit(f"unknown pass {name}")
        res["settings"] = {
            "preset": "paper",
            "population": args.population,
            "generations": args.generations,
            **{
                k: v
                for k, v in _paper_settings(Evaluator, task).items()
                if k
                in (
                    "meta_iterations",
                    "meta_lr",
                    "inner_steps",
                    "train_steps",
                    "batch_size",
                    "lr",
                    "rejection_steps",
                    "rejection_lr",
                    "rejection_batch",
                )
            },
        }
        result["passes"][name] = res
        for c in res["calls"] if name == "fixed" else []:
            n = sum(r["status"] in FRESH for r in c["results"])
            print(
                f"[ours] fixed ({'batched' if c['batched'] else 'one by one'}): {n} candidates in "
                f"{c['wall']:.1f} s ({c['wall'] / max(n, 1):.2f} s/candidate), statuses "
                f"{[r['status'] for r in c['results']]}",
                flush=True,
            )
        if name == "random":
            n = sum(r["status"] in FRESH for c in res["calls"] for r in c["results"])
            wall = sum(c["wall"] for c in res["calls"])
            rej = sum(r["status"] == "rejected" for c in res["calls"] for r in c["results"])
            print(
                f"[ours seeds {args.seeds}] random: {n} evaluated candidates in {wall:.1f} s of evaluate() "
                f"({wall / max(n, 1):.2f} s/candidate), {rej} rejected, "
                f"{len(res['calls'])} evaluate() calls",
                flush=True,
            )
    result["total_seconds"] = time.perf_counter() - t0
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
