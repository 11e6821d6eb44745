"""The partial-training fitness: the paper's (last step, one lr) and the fair one (lr grid, best along the run)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import evomal_sr as es
from evomal_sr.core.presets import resolve_preset
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.fitness import FitnessSettings, fitness_inits, partial_training_fitness
from evomal_sr.training.stacked import StackedModel

EXPRESSIONS = ["square((fx - y))", "(10.0 * square((fx - y)))", "abs((fx - y))"]


@pytest.fixture(scope="module")
def setup():
    task = es.Task.builtin("friedman1", seed=0, label_noise=0.2, model="linear")
    stacked = StackedModel(task.make_model(seed=0))
    losses = [CompiledLoss(Expression.parse(e)) for e in EXPRESSIONS]
    weights = torch.ones(len(losses), max(loss.n_weights for loss in losses))
    data = ((task.X_train, task.y_train), (task.X_val, task.y_val))
    return stacked, losses, weights, data


def _fitness(setup, **changes):
    stacked, losses, weights, (train, val) = setup
    settings = dataclasses.replace(FitnessSettings(steps=60, lr=0.01, batch_size=32, seed=3), **changes)
    return partial_training_fitness(stacked, losses, weights, train, val, kind="regression", settings=settings)


def test_grid_fitness_is_the_best_single_lr_run(setup):
    factors = (1.0, 3.0, 10.0)
    grid, _ = _fitness(setup, lr_factors=factors)
    singles = [_fitness(setup, lr=0.01 * f)[0] for f in factors]
    for k in range(len(EXPRESSIONS)):
        assert grid[k] == pytest.approx(min(s[k] for s in singles), rel=1e-5)


def test_a_larger_loss_is_only_a_larger_step_size(setup):
    # 10 x square at lr is square at 10 lr: at one lr the scale changes the fitness, on a grid it is a shift
    plain, _ = _fitness(setup)
    assert plain[1] != pytest.approx(plain[0], rel=1e-3)
    scaled, _ = _fitness(setup, lr_factors=(1.0, 10.0))
    shape, _ = _fitness(setup, lr_factors=(10.0, 100.0))
    assert scaled[1] == pytest.approx(shape[0], rel=1e-4)


def test_best_along_the_run_is_at_most_the_last_step(setup):
    last, _ = _fitness(setup)
    best, _ = _fitness(setup, eval_every=10)
    assert all(b <= a + 1e-7 for a, b in zip(last, best))


def test_fitness_from_several_inits_is_the_mean_of_each_inits_own(setup):
    stacked, losses, weights, (train, val) = setup
    task = es.Task.builtin("friedman1", seed=0, label_noise=0.2, model="linear")
    settings = FitnessSettings(steps=60, lr=0.01, batch_size=32, seed=3, lr_factors=(1.0, 3.0), eval_every=20)
    inits = fitness_inits(stacked, task.make_model, seed=0, count=3, device="cpu")
    assert torch.equal(inits[0]["weight"], stacked.initial_params()["weight"])
    assert not torch.equal(inits[1]["weight"], inits[2]["weight"])
    both, diverged = partial_training_fitness(
        stacked, losses, weights, train, val, kind="regression", settings=settings, inits=inits
    )
    each = []
    for init in inits:
        model = task.make_model(seed=0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(init[name])
        one, _ = partial_training_fitness(
            StackedModel(model), losses, weights, train, val, kind="regression", settings=settings
        )
        each.append(one)
    for k in range(len(losses)):
        assert both[k] == pytest.approx(sum(e[k] for e in each) / len(inits), rel=1e-5)
    assert diverged == [False] * len(losses)
    alone, _ = partial_training_fitness(
        stacked, losses, weights, train, val, kind="regression", settings=settings, inits=inits[:1]
    )
    assert alone == each[0]  # one init: the stacked model's own, exactly as without inits


def test_fitness_seeds_is_a_positive_integer_setting():
    assert resolve_preset("quick").fitness_seeds == 1 and resolve_preset("standard").fitness_seeds == 2
    assert resolve_preset("standard", fitness_seeds=3).fitness_seeds == 3
    with pytest.raises(es.ConfigError, match="fitness_seeds must be > 0, got 0"):
        resolve_preset("standard", fitness_seeds=0)


def test_paper_and_quick_keep_the_paper_fitness():
    for name in ("paper", "quick"):
        settings = FitnessSettings.from_preset(resolve_preset(name), 0)
        assert settings.lr_factors == (1.0,) and settings.eval_every == 0


def test_standard_scores_at_the_best_step_along_a_longer_horizon():
    standard, quick = resolve_preset("standard"), resolve_preset("quick")
    settings = FitnessSettings.from_preset(standard, 0)
    assert settings.steps == 500 > quick.train_steps and settings.eval_every == 50
    assert settings.lr_factors == (1.0, 10.0)  # two lrs x two initialisations: four copies


def test_best_along_the_run_equals_the_minimum_of_the_shorter_runs(setup):
    # the best along 60 steps (every 20) is the best of the 20-, 40- and 60-step runs
    best, _ = _fitness(setup, eval_every=20)
    runs = [_fitness(setup, steps=n)[0] for n in (20, 40, 60)]
    for k in range(len(EXPRESSIONS)):
        assert best[k] == pytest.approx(min(r[k] for r in runs), rel=1e-5)


def test_cli_fitness_eval_every(tmp_path):
    import json

    from clihelpers import invoke

    out = tmp_path / "run"
    result = invoke(
        "search", "--dataset", "iris", "--preset", "tiny", "--fitness-eval-every", "5", "--out", str(out), "-q"
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "pareto.json").read_text())["config"]["settings"]["fitness_eval_every"] == 5
    bad = invoke(
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--fitness-eval-every",
        "-1",
        "--out",
        str(tmp_path / "bad"),
        "-q",
    )
    assert bad.exit_code != 0 and "fitness_eval_every must be >= 0, got -1" in bad.output
    assert not (tmp_path / "bad" / "pareto.csv").exists()


def test_cli_fitness_seeds_and_lr_grid(tmp_path):
    import json

    from clihelpers import invoke

    out = tmp_path / "run"
    args = ["search", "--dataset", "iris", "--preset", "tiny", "-q"]
    result = invoke(*args, "--fitness-seeds", "2", "--fitness-lr-grid", "2", "--fitness-lr-ratio", "10", "--out", out)
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "pareto.json").read_text())["config"]["settings"]
    assert (settings["fitness_seeds"], settings["fitness_lr_grid"], settings["fitness_lr_ratio"]) == (2, 2, 10.0)
    bad = invoke(*args, "--fitness-seeds", "0", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "fitness_seeds must be > 0, got 0" in bad.output
    assert not (tmp_path / "bad" / "pareto.csv").exists()
