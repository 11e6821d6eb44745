"""The zoo of known losses: each pinned to a hand-written formula (float64) and to torch's own where it has one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import evomal_sr as es
from evomal_sr.errors import ConfigError

torch.set_default_dtype(torch.float32)
LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3], [-2.0, 3.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 2, 1, 1])
PRED = torch.tensor([[0.5], [-2.0], [3.0], [0.1], [1.2]], dtype=torch.float64)
TARGET = torch.tensor([0.0, 1.0, -1.0, 0.1, 4.0], dtype=torch.float64)


def _p():
    p = torch.softmax(LOGITS, dim=-1)
    return p, p[torch.arange(4), LABELS], F.one_hot(LABELS, 3).to(torch.float64)


def _classification_reference(name):
    p, p_y, y = _p()
    ce = -torch.log(p_y)
    return {
        "cross-entropy": ce.mean(),
        "label-smoothing": (0.9 * ce - 0.1 * torch.log(p).mean(dim=1)).mean(),
        "focal": (-((1 - p_y) ** 2) * torch.log(p_y)).mean(),
        "mae": (p - y).abs().sum(dim=1).mean(),
        "gce": ((1 - p_y**0.7) / 0.7).mean(),
        "sce": (
            0.1 * ce
            + 1.0
            * -(p * torch.log(torch.where(y > 0, y, torch.exp(torch.tensor(-4.0, dtype=torch.float64))))).sum(dim=1)
        ).mean(),
        "poly1": (ce + (1 - p_y)).mean(),
        "squared-error": ((p - y) ** 2).sum(dim=1).mean(),
    }[name]


def _regression_reference(name):
    r = PRED[:, 0] - TARGET
    return {
        "mse": (r**2).mean(),
        "mae": r.abs().mean(),
        "huber": torch.where(r.abs() <= 1, 0.5 * r**2, r.abs() - 0.5).mean(),
        "log-cosh": torch.log(torch.cosh(r)).mean(),
        "adaptive-huber": _huber(r, 1.345 * 1.4826 * r.abs().median()).mean(),  # 5 residuals: the middle one
    }[name]


def _huber(r, delta):
    return torch.where(r.abs() <= delta, 0.5 * r**2, delta * (r.abs() - 0.5 * delta))


@pytest.mark.parametrize("name", es.KNOWN_LOSSES["classification"])
def test_classification_zoo_matches_formula(name):
    value = es.known_loss(name, "classification")(LOGITS, LABELS)
    assert torch.allclose(value, _classification_reference(name), rtol=0, atol=1e-10), name


@pytest.mark.parametrize("name", es.KNOWN_LOSSES["regression"])
def test_regression_zoo_matches_formula(name):
    value = es.known_loss(name, "regression")(PRED, TARGET)
    assert torch.allclose(value, _regression_reference(name), rtol=0, atol=1e-10), name


def test_matches_torch_where_torch_has_it():
    assert torch.allclose(
        es.known_loss("cross-entropy", "classification")(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS), atol=1e-12
    )
    assert torch.allclose(
        es.known_loss("label-smoothing", "classification")(LOGITS, LABELS),
        F.cross_entropy(LOGITS, LABELS, label_smoothing=0.1),
        atol=1e-12,
    )
    target = TARGET.reshape(-1, 1)
    assert torch.allclose(es.known_loss("mse", "regression")(PRED, TARGET), F.mse_loss(PRED, target), atol=1e-12)
    assert torch.allclose(es.known_loss("mae", "regression")(PRED, TARGET), F.l1_loss(PRED, target), atol=1e-12)
    assert torch.allclose(es.known_loss("huber", "regression")(PRED, TARGET), F.huber_loss(PRED, target), atol=1e-12)
    assert torch.allclose(
        es.known_loss("huber", "regression", delta=0.5)(PRED, TARGET), F.huber_loss(PRED, target, delta=0.5), atol=1e-12
    )


def test_adaptive_huber_holds_its_threshold_constant_in_the_gradient():
    pred = PRED.clone().requires_grad_(True)
    es.known_loss("adaptive-huber", "regression")(pred, TARGET).backward()
    r = PRED[:, 0] - TARGET
    delta = 1.345 * 1.4826 * r.abs().median()
    expected = torch.where(r.abs() <= delta, r, delta * r.sign()) / len(r)  # psi(r) / n, no term from the median
    assert torch.allclose(pred.grad[:, 0], expected, rtol=0, atol=1e-12)


def test_adaptive_huber_scales_with_the_residuals_and_takes_each_copys_median():
    loss = es.known_loss("adaptive-huber", "regression", c=2.0)
    r = torch.tensor([[[0.1], [-0.2], [0.3], [-0.4]], [[1.0], [2.0], [3.0], [100.0]]], dtype=torch.float64)
    lower_middle = torch.tensor([0.2, 2.0], dtype=torch.float64)  # torch.median of an even count
    assert torch.allclose(loss.threshold(r).flatten(), 2.0 * 1.4826 * lower_middle, rtol=0, atol=1e-12)
    scaled = es.known_loss("adaptive-huber", "regression")(10 * PRED, 10 * TARGET)
    assert torch.allclose(scaled, 100 * es.known_loss("adaptive-huber", "regression")(PRED, TARGET), atol=1e-9)
    assert loss.describe() == "adaptive-huber(c=2)"
    zero = es.known_loss("adaptive-huber", "regression")(torch.zeros(3, 1), torch.zeros(3))
    assert float(zero) == 0.0


def test_log_cosh_does_not_overflow():
    value = es.known_loss("log-cosh", "regression")(torch.tensor([[1000.0]]), torch.tensor([0.0]))
    assert torch.isfinite(value) and abs(float(value) - (1000 - torch.log(torch.tensor(2.0)))) < 1e-3


def test_binary_single_logit_is_sigmoid():
    z = torch.tensor([[0.3], [-1.2]], dtype=torch.float64)
    labels = torch.tensor([1, 0])
    ce = es.known_loss("cross-entropy", "classification")(z, labels)
    assert torch.allclose(ce, F.binary_cross_entropy_with_logits(z[:, 0], labels.double()), atol=1e-12)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_every_name_builds_and_per_copy_matches_forward(kind):
    torch.manual_seed(0)
    for name in es.KNOWN_LOSSES[kind]:
        loss = es.known_loss(name, kind)
        assert loss.task == kind and loss.n_parameters == 0 and name in loss.describe()
        if kind == "classification":
            outputs, targets = torch.randn(3, 5, 4), torch.randint(4, (3, 5))
        else:
            outputs, targets = torch.randn(3, 5, 1), torch.randn(3, 5)
        per_copy = loss.per_copy(outputs, targets)
        assert torch.allclose(per_copy, torch.stack([loss(outputs[k], targets[k]) for k in range(3)]))


def test_bad_names_and_kinds():
    with pytest.raises(ConfigError, match="gce.*huber|huber.*gce|choose one of"):
        es.known_loss("hubert", "regression")
    with pytest.raises(ConfigError, match="classification loss"):
        es.known_loss("gce", "regression")
    with pytest.raises(ConfigError, match="task kind"):
        es.known_loss("mse", "ranking")
    with pytest.raises(ConfigError, match="parameter"):
        es.known_loss("gce", "classification", gamma=3)


def test_every_loss_of_the_package_is_a_loss_module():
    from evomal_sr.losses.base import ElementwiseLoss, LossModule, PopulationLoss
    from evomal_sr.losses.ml3 import ML3Loss
    from evomal_sr.losses.standard import StandardLoss
    from evomal_sr.losses.taylorglo import TaylorGLOLoss

    learned = es.LearnedLoss("-(y * log(fx))")
    flat = [ML3Loss("classification"), TaylorGLOLoss("classification", parameters=[0.0] * 8)]
    assert all(isinstance(m, ElementwiseLoss) for m in [learned, *flat])
    assert all(isinstance(es.known_loss(n, k), PopulationLoss) for k in es.KNOWN_LOSSES for n in es.KNOWN_LOSSES[k])
    assert isinstance(StandardLoss("regression"), PopulationLoss)
    assert all(isinstance(m, LossModule) for m in [learned, *flat, StandardLoss("classification")])


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_zoo_expressions_compute_their_zoo_loss_up_to_factor_and_constant(kind):
    """Each expression's loss is a * zoo + b with a > 0 (so the same SGD path at a rescaled lr)."""
    from evomal_sr.grammar.expression import Expression
    from evomal_sr.losses.symbolic import LearnedLoss
    from evomal_sr.losses.zoo import ZOO_EXPRESSIONS, known_loss, zoo_expressions

    gen = torch.Generator().manual_seed(0)
    tested = 0
    for name, (text, _) in ZOO_EXPRESSIONS[kind].items():
        Expression.parse(text)
        zoo_name = {"pseudo-huber": None}.get(name, name)
        if zoo_name is None or (kind == "classification" and name == "sce"):
            continue  # pseudo-Huber is not in the zoo; SCE's mixing weights differ (edge weights learn them)
        learned = LearnedLoss(text, task=kind).double()
        zoo = known_loss(zoo_name, kind)
        pairs = []
        for _ in range(6):
            out = torch.randn(1, 4, generator=gen, dtype=torch.float64)
            target = (
                torch.randint(0, 4, (1,), generator=gen)
                if kind == "classification"
                else torch.randn(1, 4, generator=gen, dtype=torch.float64)
            )
            with torch.no_grad():
                pairs.append((float(zoo(out, target)), float(learned(out, target))))
        (z0, l0), (z1, l1) = pairs[0], pairs[1]
        a = (l1 - l0) / (z1 - z0)
        b = l0 - a * z0
        assert a > 0, name
        for z, value in pairs:
            assert value == pytest.approx(a * z + b, rel=1e-6, abs=1e-9), name
        tested += 1
    assert tested >= 3
    assert all(text in zoo_expressions(kind, "robust") for text, _ in ZOO_EXPRESSIONS[kind].values())
    assert "huber" not in " ".join(zoo_expressions(kind, "extended"))
    assert "exp" not in " ".join(zoo_expressions(kind, "paper"))
