"""Time the EvoMAL reference code (Decadz/Evolved-Model-Agnostic-Loss) per evaluated candidate.

Normally started by run.sh.  By hand, with the reference's venv (see setup.sh), from anywhere:
    "$REF_VENV/bin/python" ref_bench.py --seed 0 --population 12 --generations 2 --out r.json

The reference source is $REF_SRC (run.sh and setup.sh set it; see common.sh), by default the clone
at ${XDG_CACHE_HOME:-~/.cache}/evomal-reference that setup.sh makes.

Drives the reference exactly like experiments/run_learning.py::_run_evomal_experiment
(GIMLI local search + EvolutionaryAlgorithm + LossFunctionLearning.meta_train) on sklearn
digits with MultiLayerPerceptron(64, 100, 10), mnist_config.yaml settings, and times the
stages by wrapping the live methods.  No reference file is edited: the module
experiments.resources.datasets (which needs torchvision and sklearn's removed load_boston)
is replaced in sys.modules by a substitute exposing the same names plus Digits.

Passes:
  fixed   the same 3 trees as the other side (CE, square(y-fx), a 12-node tree), one
          generation of the real EA loop with the population replaced by these trees
  random  a real search: ramped half-and-half population (heights 2-4) of --population,
          --generations generations (gen >= 1: the reference's own evolution)
"""

import argparse
import json
import os
import random
import sys
import time
import types

HERE = os.path.dirname(os.path.realpath(__file__))
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
REF_SRC = os.path.realpath(os.environ.get("REF_SRC") or os.path.join(CACHE, "evomal-reference"))
sys.dont_write_bytecode = True  # leave the reference folder as it is (no __pycache__)

FIXED_TREES = [
    # (name, reference DEAP string; ARG0 = y, ARG1 = f(x))
    ("cross-entropy -(y*log(fx))", "mul(-1, mul(ARG0, log(ARG1)))"),
    ("square(y-fx)", "square(sub(ARG0, ARG1))"),
    ("12-node: -(y*log(fx)) + tanh(square(y-fx))", "add(mul(-1, mul(ARG0, log(ARG1))), tanh(square(sub(ARG0, ARG1))))"),
]


def install_dataset_substitute(data_mode):
    """Put a torchvision-free experiments.resources.datasets into sys.modules (plus Digits)."""
    import torch

    mod = types.ModuleType("experiments.resources.datasets")

    def _unavailable(name):
        def f(*a, **k):
            raise RuntimeError(f"{name} is not available in this benchmark substitute")

        f.__name__ = name
        return f

    for name in ("Diabetes", "BostonHousing", "CaliforniaHousing", "MNIST", "SVHN", "CIFAR10", "CIFAR100"):
        setattr(mod, name, _unavailable(name))

    def Digits():
        if data_mode == "ours":
            # the exact standardised split evomal-sr uses (dumped by ours_bench.py --dump-data)
            d = torch.load(os.environ["OURS_DATA"])
            tr = torch.utils.data.TensorDataset(d["X_train"].float(), d["y_train"].long())
            va = torch.utils.data.TensorDataset(d["X_val"].float(), d["y_val"].long())
            te = torch.utils.data.TensorDataset(d["X_test"].float(), d["y_test"].long())
            return tr, va, te
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=360, stratify=y, random_state=0)
        X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, test_size=180, stratify=y_rest, random_state=0)

        def ds(a, b):
            return torch.utils.data.TensorDataset(torch.tensor(a, dtype=torch.float), torch.tensor(b, dtype=torch.long))

        return ds(X_tr, y_tr), ds(X_va, y_va), ds(X_te, y_te)

    mod.Digits = Digits
    sys.modules["experiments.resources.datasets"] = mod
    return Digits


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pass", dest="passes", default="fixed,random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--population", type=int, default=12)
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", choices=["ref", "ours"], default="ref")
    p.add_argument("--no-warmup", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    out_path = os.path.abspath(args.out)
    if not os.path.isfile(os.path.join(REF_SRC, "source", "__init__.py")):
        raise SystemExit(
            f"error: the EvoMAL reference source was not found at {REF_SRC} "
            "(bash setup.sh clones it there, or set REF_SRC to a copy)."
        )

    import torch

    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()

    sys.path.insert(0, REF_SRC)
    Digits = install_dataset_substitute(args.data)
    import numpy
    import source.optimization.ea as ea_module
    import yaml
    from deap import creator
    from experiments.resources import objective_archive
    from experiments.resources.models.mlp import MultiLayerPerceptron
    from source import EvolutionaryAlgorithm, GeneralizedInnerLoopMetaLearning, LossFunctionLearning
    from source.representation.utilities.gp_expression import pset

    with open(os.path.join(REF_SRC, "experiments", "resources", "configurations", "mnist_config.yaml")) as f:
        base_config = yaml.safe_load(f)
    device = os.environ.get("BENCH_DEVICE", "cpu")  # cuda: the reference as written supports it

    def build(config, random_state):
        """The object graph of _run_evomal_experiment (seeding, dataset, gimli, ea, lfl)."""
        torch.manual_seed(random_state)
        numpy.random.seed(random_state)
        random.seed(random_state)
        training, validation, testing = Digits()
        gimli = GeneralizedInnerLoopMetaLearning(
            base_network=MultiLayerPerceptron,
            random_state=random_state,
            device=device,
            performance_metric=objective_archive[config["outer_objective_name"]],
            task_loss=objective_archive[config["inner_objective_name"]],
            **config,
        )
        gimli.verbose = 0
        ea = EvolutionaryAlgorithm(
            base_network=MultiLayerPerceptron,
            random_state=random_state,
            device=device,
            performance_metric=objective_archive[config["outer_objective_name"]],
            task_loss=objective_archive[config["inner_objective_name"]],
            local_search=gimli,
            **config,
        )
        lfl = LossFunctionLearning(
            representation="gp",
            optimization=ea,
            base_network=MultiLayerPerceptron,
            random_state=random_state,
            device=device,
            **config,
        )
        return training, validation, gimli, ea, lfl

    def make_config(population, generations, **overrides):
        c = dict(base_config)
        c.update(
            population_size=population,
            num_generations=generations,
            verbose=0,
            base_network_parameters={"input_dim": 64, "hidden_dim": 100, "output_dim": 10},
        )
        c.update(overrides)
        return c

    def instrumented_run(config, random_state, fixed=None):
        """meta_train with every stage timed; returns per-candidate records and the wall time."""
        training, validation, gimli, ea, lfl = build(config, random_state)
        records = []
        cur = {}

        def timed(name, fn):
            def wrapper(*a, **k):
                t = time.perf_counter()
                out = fn(*a, **k)
                cur[name] = cur.get(name, 0.0) + time.perf_counter() - t
                if name == "rejection":
                    cur["rejected"] = bool(out)
                return out

            return wrapper

        orig_pt = ea_module.phase_transformer

        def pt_wrapper(expression_tree, **k):
            nonlocal cur
            cur = {}
            records.append(cur)
            t = time.perf_counter()
            out = orig_pt(expression_tree=expression_tree, **k)
            cur["phase_transformer"] = time.perf_counter() - t
            cur["expression"] = str(expression_tree)
            cur["size"] = len(expression_tree)
            cur["generation"] = gen_counter[0]
            return out

        gen_counter = [0]
        ea_module.phase_transformer = pt_wrapper
        gimli.train = timed("local_search", gimli.train)
        ea.loss_filters.compute_predictions = timed("filter_predictions", ea.loss_filters.compute_predictions)
        ea.loss_filters.rejection_protocol = timed("rejection", ea.loss_filters.rejection_protocol)
        ea._fitness_evaluation = timed("fitness", ea._fitness_evaluation)
        orig_evolve = ea._evolve

        def evolve(*a, **k):
            gen_counter[0] += 1
            return orig_evolve(*a, **k)

        ea._evolve = evolve
        if fixed is not None:
            trees = [creator.Expression.from_string(s, pset) for _, s in fixed]
            ea._initialize_population = lambda: trees
        slots = config["population_size"] * config["num_generations"]
        t = time.perf_counter()
        try:
            _, history = lfl.meta_train(training, validation)
        finally:
            ea_module.phase_transformer = orig_pt
        wall = time.perf_counter() - t
        stage_keys = ("phase_transformer", "local_search", "filter_predictions", "rejection", "fitness")
        out = []
        for r in records:
            d = dict(r)
            d["seconds"] = sum(d.get(k, 0.0) for k in stage_keys)
            out.append(d)
        return {
            "wall": wall,
            "slots": slots,
            "candidates": out,
            "archive_hits": sum(history["symbolic_equivalence_history"]),
            "rejected_total": sum(history["rejection_protocol_history"]),
            "best_fitness": [None if (x is None or x != x) else float(x) for x in history["meta-training"]],
        }

    result = {
        "side": "reference",
        "device": device,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "loadavg_start": load_at_start,
        "data": args.data,
        "passes": {},
    }
    t0 = time.perf_counter()
    if not args.no_warmup:  # one small candidate through the pipeline, not measured
        cfg = make_config(1, 1, meta_gradient_steps=3, base_gradient_steps=3, filter_gradient_steps=3)
        tw = time.perf_counter()
        instrumented_run(cfg, 12345, fixed=FIXED_TREES[:1])
        result["warmup_seconds"] = time.perf_counter() - tw
    for name in args.passes.split(","):
        if name == "fixed":
            cfg = make_config(len(FIXED_TREES), 1)
            res = instrumented_run(cfg, args.seed, fixed=FIXED_TREES)
            for rec, (label, _) in zip(res["candidates"], FIXED_TREES):
                rec["label"] = label
        elif name == "random":
            cfg = make_config(args.population, args.generations)
            res = instrumented_run(cfg, args.seed)
        else:
            raise SystemExit(f"unknown pass {name}")
        res["settings"] = {
            k: cfg[k]
            for k in (
                "population_size",
                "num_generations",
                "meta_gradient_steps",
                "meta_learning_rate",
                "inner_gradient_steps",
                "base_gradient_steps",
                "base_learning_rate",
                "base_batch_size",
                "filter_gradient_steps",
                "filter_sample_size",
                "base_network_parameters",
            )
        }
        result["passes"][name] = res
        n = len(res["candidates"])
        rej = sum(1 for c in res["candidates"] if c.get("rejected"))
        print(
            f"[reference seed {args.seed}] {name}: {n} evaluated candidates in {res['wall']:.1f} s "
            f"({res['wall'] / max(n, 1):.2f} s/candidate), {rej} rejected, "
            f"{res['archive_hits']} archive hits",
            flush=True,
        )
    result["total_seconds"] = time.perf_counter() - t0
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
