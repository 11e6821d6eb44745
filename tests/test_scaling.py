"""Gradient-norm loss scaling (``loss_scaling="grad_norm"``): invariance, gradients, persistence."""

from __future__ import annotations

import json

import pytest
import torch

import evomal_sr as es
from evomal_sr.errors import ConfigError, ExpressionError, LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.standard import standard_loss_per_copy
from evomal_sr.losses.symbolic import CompiledLoss, LearnedLoss
from evomal_sr.results.front import FrontEntry
from evomal_sr.training.fitness import FitnessSettings, partial_training_fitness
from evomal_sr.training.scaling import ScaleProbe, mean_gradient_norm, probe_scales
from evomal_sr.training.stacked import StackedModel


def _probe(kind="classification", dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    outputs = torch.randn(16, 3, generator=gen, dtype=dtype)
    targets = (
        torch.randint(0, 3, (16,), generator=gen)
        if kind == "classification"
        else torch.randn(16, 3, generator=gen, dtype=dtype)
    )
    return ScaleProbe(outputs, targets, kind)


def _compiled(*texts):
    return [CompiledLoss(Expression.parse(t)) for t in texts]


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_a_scaled_loss_gets_the_inverse_scale_and_the_standard_loss_one(kind):
    base = "-(y * log(fx))" if kind == "classification" else "square(fx - y)"
    losses = _compiled(base, f"(7.0 * {base})")
    width = max(loss.n_weights for loss in losses)
    scales = probe_scales(losses, torch.ones(2, width, dtype=torch.float64), _probe(kind, torch.float64))
    assert float(scales[0]) == pytest.approx(1.0, rel=1e-6)  # the standard loss, written as an expression
    assert float(scales[1]) == pytest.approx(1.0 / 7.0, rel=1e-9)


def test_reference_norm_is_the_hand_written_mean_row_gradient_norm():
    probe = _probe(dtype=torch.float64)
    z = probe.outputs.clone().requires_grad_(True)
    rows = [
        torch.autograd.grad(torch.nn.functional.cross_entropy(z[b : b + 1], probe.targets[b : b + 1]), z)[0][b]
        for b in range(z.shape[0])
    ]
    expected = torch.stack([r.norm() for r in rows]).mean()
    got = mean_gradient_norm(
        lambda out: standard_loss_per_copy(out, probe.targets, probe.kind), probe.outputs, 1, create_graph=False
    )
    torch.testing.assert_close(got, expected.reshape(1), rtol=1e-12, atol=0)
    torch.testing.assert_close(probe.reference, expected.reshape(1), rtol=1e-12, atol=0)


def test_scale_gradient_matches_finite_differences_in_float64():
    losses = _compiled("(-(y * log(fx)) + square((fx - y)))")
    probe = _probe(dtype=torch.float64)
    weights = (
        torch.ones(1, losses[0].n_weights, dtype=torch.float64)
        + 0.1 * torch.randn(1, losses[0].n_weights, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ).requires_grad_(True)
    (grad,) = torch.autograd.grad(probe_scales(losses, weights, probe).sum(), [weights])
    eps = 1e-6
    for i in range(weights.shape[1]):
        step = torch.zeros_like(weights)
        step[0, i] = eps
        numeric = (
            probe_scales(losses, weights.detach() + step, probe) - probe_scales(losses, weights.detach() - step, probe)
        ) / (2 * eps)
        assert float(grad[0, i]) == pytest.approx(float(numeric[0]), rel=1e-5, abs=1e-8)


def test_flat_or_non_finite_losses_keep_scale_one():
    losses = _compiled("y", "log(0.0)")  # no dependence on fx; a constant
    assert probe_scales(losses, torch.ones(2, 1), _probe()).tolist() == [1.0, 1.0]


def test_scaled_training_is_invariant_to_the_loss_size():
    """With the scale applied, 10 x a loss trains exactly like the loss (up to rounding)."""
    torch.manual_seed(0)
    stacked = StackedModel(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)))
    X, Y = torch.randn(64, 4, dtype=torch.float32), torch.randint(0, 3, (64,))
    probe = ScaleProbe(
        stacked.evaluate(StackedModel.replicate(stacked.initial_params(), 1), X[:16])[0].detach(),
        Y[:16],
        "classification",
    )
    losses = _compiled("-(y * log(fx))", "-((10.0 * y) * log(fx))")
    weights = torch.ones(2, max(loss.n_weights for loss in losses))
    scales = probe_scales(losses, weights, probe)
    settings = FitnessSettings(steps=30, lr=0.5, batch_size=16, seed=0)
    scaled, _ = partial_training_fitness(
        stacked, losses, weights, (X, Y), (X, Y), kind="classification", settings=settings, scales=scales
    )
    raw, _ = partial_training_fitness(
        stacked, losses, weights, (X, Y), (X, Y), kind="classification", settings=settings
    )
    assert scaled[0] == pytest.approx(scaled[1], abs=1.0 / 64 + 1e-9)  # at most one row differs by rounding
    assert raw[0] != raw[1] or scales[1] == pytest.approx(0.1)


def test_evaluator_with_grad_norm_stores_the_scale_and_the_loss_reproduces_it(tmp_path):
    task = es.Task.builtin("iris", seed=0)
    ev = es.Evaluator(task, preset="tiny", loss_scaling="grad_norm")
    (result,) = ev.evaluate(["-((3.0 * y) * log(fx))"])
    assert str(result.status) == "ok" and 0.2 < result.scale < 0.5  # about 1/3
    loss = result.to_loss(task.kind)
    unscaled = LearnedLoss(result.expression, task=task.kind, weights=list(result.weights))
    out, target = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(loss(out, target), unscaled(out, target) * result.scale, rtol=1e-6, atol=0)
    loss.save(tmp_path / "loss.json")
    assert json.loads((tmp_path / "loss.json").read_text())["scale"] == result.scale
    again = LearnedLoss.load(tmp_path / "loss.json")
    assert again.scale == result.scale and torch.equal(again(out, target), loss(out, target))
    entry = FrontEntry.from_result(result)
    assert FrontEntry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry
    unscaled_entry = FrontEntry(entry.expression, entry.weights, entry.fitness, entry.complexity)
    assert entry.equation() == "(-1.0 * (y * log((1.0 * fx))))" != unscaled_entry.equation()  # 1/3 x 3 folded
    assert FitnessResult_round_trip(result)


def FitnessResult_round_trip(result) -> bool:
    from evomal_sr.scoring.evaluator import FitnessResult

    return FitnessResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_unscaled_records_keep_their_bytes_and_bad_scales_are_refused():
    loss = LearnedLoss("square(fx - y)", task="regression")
    assert "scale" not in loss.to_dict() and "scale" not in FrontEntry("fx", (), 0.1, 1).to_dict()
    for bad in (0.0, -1.0, float("nan"), "2", True):
        with pytest.raises(ExpressionError, match="scale"):
            LearnedLoss("fx", task="regression", scale=bad)
        with pytest.raises(LossFileError, match="scale"):
            FrontEntry.from_dict({"expression": "fx", "weights": [], "fitness": 0.1, "complexity": 1, "scale": bad})
    with pytest.raises(ConfigError, match="loss_scaling must be one of none, grad_norm, got 'l2'"):
        es.LossSearch(preset="tiny", loss_scaling="l2")._validated()
    with pytest.raises(ConfigError, match="operators must be one of paper, extended"):
        es.LossSearch(preset="tiny", operators="all")._validated()


def test_cli_search_with_extended_operators_and_grad_norm(tmp_path):
    from clihelpers import invoke

    out = tmp_path / "run"
    result = invoke(
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--operators",
        "extended",
        "--loss-scaling",
        "grad_norm",
        "--out",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "pareto.json").read_text())
    assert saved["config"]["settings"]["operators"] == "extended"
    assert saved["config"]["settings"]["loss_scaling"] == "grad_norm"
    assert any(entry.get("scale", 1.0) != 1.0 for entry in saved["entries"])
    front = es.load_front(out)
    loss = front.select("accuracy").loss(front.task_kind)
    assert loss.scale == next(e.scale for e in front.entries if e.expression == str(loss.expression))


def test_initial_losses_zoo_seeds_the_search_with_the_known_losses():
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.losses.zoo import zoo_expressions
    from evomal_sr.search.inputs import initial_guesses

    task = es.Task.builtin("iris", seed=0)
    assert initial_guesses(task, resolve_preset("quick")) == ["-(y * log(fx))"]
    assert resolve_preset("standard").initial_losses == "zoo" and resolve_preset("paper").initial_losses == "baseline"
    zoo = initial_guesses(task, resolve_preset("quick", initial_losses="zoo"))
    assert zoo[0] == "-(y * log(fx))" and set(zoo) == set(zoo_expressions("classification"))
    extended = initial_guesses(task, resolve_preset("quick", initial_losses="zoo", operators="extended"))
    assert any("exp" in text for text in extended) and len(extended) == len(zoo) + 1
    search = es.LossSearch(preset="tiny", population=8, generations=1, initial_losses="zoo").fit(task)
    scored = set(search.evaluator_._results)  # neg(x) is searched as (-1.0 * x)
    assert {"abs((fx - y))", "square((fx - y))", "((-1.0 * (y * log(fx))) + abs((fx - y)))"} <= scored
