"""The CUDA-graph training path (:mod:`evomal_sr.training.captured`) gives the eager loop's numbers.

A graph can only be recorded on CUDA, so on CPU the recorded step is run eagerly:
the step itself, the replay loop (per-copy learning rates, a scoring callback
after each step, as the fitness's lr grid and best-along-run use them) and the
``cuda_graph`` option's way from the CLI and the API to the training call are
compared exactly (``torch.equal``). The ``cuda``-marked tests compare a real
replay with the eager loop on a GPU.
"""

import pytest
import torch
from clihelpers import invoke

import evomal_sr as es
import evomal_sr.training.fitness as fitness_module
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss, target_to_y
from evomal_sr.training.captured import masked_static_step, replay_steps
from evomal_sr.training.loop import BatchSampler, CandidateLosses, evaluate_metric, train_candidates
from evomal_sr.training.stacked import StackedModel

TREES = ["-(y * log(fx))", "square(y - fx)", "(-(y * log(fx)) + tanh(square(y - fx)))"]
#: One learning rate for every copy, or one per copy (the fitness's lr grid).
LRS = {"one lr": 2.0, "one lr per copy": torch.tensor([2.0, 0.5, 1.0, 2.0])}


def _diverging_training_setup(device="cpu"):
    """Four candidates on a small MLP; the last one overflows float32 once training pushes fx up."""
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    stacked = StackedModel(net.to(device))
    X, Y = 3 * torch.randn(60, 5), torch.randint(3, (60,))
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES + ["-(square((fx * 2e18)))"]]
    return stacked, losses, torch.ones(4, 12, device=device), (X.to(device), Y.to(device))


def _capturable_state(stacked, losses, weights, data, params):
    """Fresh leaf copies of ``params``, ``active``/``steps_done`` flags and the step's ``values_fn``."""
    X, Y = data
    target = target_to_y(Y, 3, "classification", torch.float32)
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    active, done = torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.long)

    def values_fn(p, index):
        return CandidateLosses(losses, weights, "classification").per_copy(
            stacked(p, X[index]), same_targets(target[index], 4)
        )

    return theta, active, done, values_fn


def _scores_every(steps, stacked, data, into):
    """An ``after_step`` that records every copy's validation metric every ``steps`` steps."""

    def after_step(step, theta):
        if step % steps == 0:
            into.append(
                evaluate_metric(
                    stacked, {k: v.detach() for k, v in theta.items()}, data, kind="classification"
                ).tolist()
            )

    return after_step


@pytest.mark.parametrize("lr", LRS.values(), ids=LRS.keys())
def test_the_capturable_step_run_eagerly_matches_the_eager_loop(lr):
    stacked, losses, weights, (X, Y) = _diverging_training_setup()
    params = StackedModel.replicate(stacked.initial_params(), 4)
    eager = train_candidates(
        stacked,
        params,
        losses,
        weights,
        (X, Y),
        kind="classification",
        steps=25,
        lr=lr,
        sampler=BatchSampler(60, 16, 0),
    )
    sampler = BatchSampler(60, 16, 0)
    theta, active, done, values_fn = _capturable_state(stacked, losses, weights, (X, Y), params)
    for _ in range(25):
        masked_static_step(theta, values_fn, sampler.next(), active, done, lr)
    assert eager.diverged.tolist() == (~active).tolist()
    assert eager.diverged.any()  # the setup does exercise a copy that stops
    assert eager.steps_done.tolist() == done.tolist()
    assert all(torch.equal(eager.params[k], theta[k].detach()) for k in theta)


def test_replaying_the_step_with_a_scoring_callback_matches_the_eager_loop():
    stacked, losses, weights, (X, Y) = _diverging_training_setup()
    lr = LRS["one lr per copy"]
    params = StackedModel.replicate(stacked.initial_params(), 4)
    eager_scores, replayed_scores = [], []
    eager = train_candidates(
        stacked,
        params,
        losses,
        weights,
        (X, Y),
        kind="classification",
        steps=25,
        lr=lr,
        sampler=BatchSampler(60, 16, 0),
        after_step=_scores_every(5, stacked, (X, Y), eager_scores),
    )
    sampler = BatchSampler(60, 16, 0)
    theta, active, done, values_fn = _capturable_state(stacked, losses, weights, (X, Y), params)
    static_index = sampler.next().clone()
    replay_steps(
        lambda: masked_static_step(theta, values_fn, static_index, active, done, lr),
        sampler.next,
        static_index,
        theta,
        steps=25,
        after_step=_scores_every(5, stacked, (X, Y), replayed_scores),
    )
    assert len(eager_scores) == 5 and replayed_scores == eager_scores
    assert eager.diverged.tolist() == (~active).tolist() and eager.steps_done.tolist() == done.tolist()
    assert all(torch.equal(eager.params[k], theta[k].detach()) for k in theta)


@pytest.mark.parametrize("lr", LRS.values(), ids=LRS.keys())
def test_cuda_graph_request_falls_back_to_the_eager_loop_off_cuda(lr):
    stacked, losses, weights, data = _diverging_training_setup()
    params = StackedModel.replicate(stacked.initial_params(), 4)
    runs = [
        train_candidates(
            stacked,
            params,
            losses,
            weights,
            data,
            kind="classification",
            steps=20,
            lr=lr,
            sampler=BatchSampler(60, 16, 0),
            cuda_graph=graph,
        )
        for graph in (False, True)
    ]
    assert runs[0].steps_done.tolist() == runs[1].steps_done.tolist()
    assert all(torch.equal(runs[0].params[k], runs[1].params[k]) for k in runs[0].params)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"fitness_lr_grid": 2, "fitness_eval_every": 5}],
    ids=["paper fitness", "lr grid, best along the run"],
)
def test_the_evaluator_hands_its_cuda_graph_setting_to_the_fitness(monkeypatch, overrides):
    requested = []
    original = fitness_module.train_candidates

    def spy(*args, **kwargs):
        requested.append(kwargs["cuda_graph"])
        return original(*args, **kwargs)

    monkeypatch.setattr(fitness_module, "train_candidates", spy)
    task = es.Task.builtin("iris", seed=0)
    results = {}
    for graph in (False, True):
        evaluator = es.Evaluator(task, preset="tiny", seed=1, cuda_graph=graph, **overrides)
        results[graph] = [(r.status, r.fitness, r.weights) for r in evaluator.evaluate(TREES)]
    assert requested and set(requested) == {False, True}
    assert results[True] == results[False]  # ignored on CPU: the eager loop ran both times


def test_the_search_and_the_dask_spec_carry_the_cuda_graph_setting():
    search = es.LossSearch(preset="tiny", population=4, generations=1, cuda_graph=True).fit(
        es.Task.builtin("iris", seed=0)
    )
    assert search.evaluator_.cuda_graph is True
    pytest.importorskip("distributed")
    from evomal_sr.parallel.dask_executor import ScorerSpec

    assert ScorerSpec.from_evaluator(search.evaluator_).build().cuda_graph is True


def test_cli_cuda_graph_flag_is_accepted_on_cpu_and_changes_no_result(tmp_path):
    tiny = [
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--population",
        "4",
        "--generations",
        "2",
        "--seed",
        "0",
        "--quiet",
    ]
    for name, flags in (("eager", []), ("graph", ["--cuda-graph"])):
        result = invoke("search", *tiny, *flags, "--out", tmp_path / name)
        assert result.exit_code == 0, result.stderr
    assert (tmp_path / "graph" / "pareto.csv").read_bytes() == (tmp_path / "eager" / "pareto.csv").read_bytes()


@pytest.mark.parametrize("lr", LRS.values(), ids=LRS.keys())
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_training_matches_eager_training_on_the_gpu(lr):
    stacked, losses, weights, data = _diverging_training_setup("cuda")
    lr = lr.cuda() if isinstance(lr, torch.Tensor) else lr
    params = StackedModel.replicate(stacked.initial_params(), 4)
    scores = [[], []]
    runs = [
        train_candidates(
            stacked,
            params,
            losses,
            weights,
            data,
            kind="classification",
            steps=20,
            lr=lr,
            sampler=BatchSampler(60, 16, 0),
            cuda_graph=graph,
            after_step=_scores_every(5, stacked, data, scores[graph]),
        )
        for graph in (False, True)
    ]
    assert runs[0].steps_done.tolist() == runs[1].steps_done.tolist()
    assert runs[0].diverged.tolist() == runs[1].diverged.tolist()
    assert all(torch.equal(runs[0].params[k], runs[1].params[k]) for k in runs[0].params)
    assert scores[0] == scores[1]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_evaluator_on_the_gpu_gives_the_same_fitness_with_the_cuda_graph():
    task = es.Task.builtin("digits", seed=0)
    results = {
        graph: [
            (r.status, r.fitness, r.weights)
            for r in es.Evaluator(
                task,
                preset="paper",
                device="cuda",
                seed=0,
                cuda_graph=graph,
                meta_iterations=5,
                train_steps=40,
                fitness_lr_grid=2,
                fitness_eval_every=10,
            ).evaluate(TREES)
        ]
        for graph in (False, True)
    }
    assert results[True] == results[False]
