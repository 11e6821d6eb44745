"""Every zoo loss written in the loss grammar, checked against its exact implementation (float64, 1e-6).

``fx`` is the softmax of the logits and ``y`` the one-hot labels (classification,
summed over classes, averaged over the batch), or the prediction and the target
(regression, averaged), as :func:`evomal_sr.losses.symbolic.prepare_inputs` gives them.
Each expression below computes its zoo loss *exactly* (its textbook parameters),
not up to a factor, and names the smallest operator set that writes it.

Which zoo losses cannot be written, and why
-------------------------------------------
* In no operator set: the adaptive Huber loss, whose threshold is a statistic of
  the whole batch (1.345 x 1.4826 x the median absolute residual), where a
  grammar's loss is elementwise in ``(y, fx)``; for one batch it is Huber with
  that threshold, which an edge weight reaches (the test below on Huber's).
* With ``operators="robust"``: every other zoo loss is written exactly, within
  these limits of the protected operators (never reached by the inputs below):
  ``log`` floors probabilities at 1e-7, so cross-entropy-like losses differ where
  ``p < 1e-7``; ``exp`` is capped at ``exp(20)``, so log-cosh differs for
  residuals beyond 20; label smoothing's uniform part ``eps / C`` is a constant of
  the expression, so one expression is exact for one class count ``C``.
* With ``operators="extended"``: as above (generalised cross-entropy through
  ``exp(q * log(fx))``, Huber only as the deep min/abs/square form).
* With ``operators="paper"``: generalised cross-entropy (a non-integer power of
  ``p_y`` needs ``exp`` or ``pow``) and log-cosh (needs ``exp``) cannot be written;
  Huber only as ``0.5 min(|r|, 1)^2 + |r| - min(|r|, 1)``, five levels deep.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.operators import OPERATORS, check_operator_set, searchable_operators
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.losses.zoo import KNOWN_LOSSES, known_loss

N_CLASSES = 4
N_OUTPUTS = 3
#: zoo losses no grammar writes (module docstring)
UNWRITTEN = {"regression": {"adaptive-huber"}, "classification": set()}
HUBER_PAPER = "((0.5 * square(min(abs((fx - y)), 1.0))) + (abs((fx - y)) - min(abs((fx - y)), 1.0)))"

#: (zoo name, zoo parameters) -> [(expression, smallest operator set that writes it), ...]
WRITTEN: dict[str, dict[tuple[str, tuple], list[tuple[str, str]]]] = {
    "classification": {
        ("cross-entropy", ()): [("-(y * log(fx))", "paper")],
        ("label-smoothing", ()): [(f"-((((1.0 - 0.1) * y) + {0.1 / N_CLASSES!r}) * log(fx))", "paper")],
        ("focal", ()): [("-((y * square((1.0 - fx))) * log(fx))", "paper")],
        ("focal", (("gamma", 0.5),)): [("-((y * pow((1.0 - fx), 0.5)) * log(fx))", "robust")],
        ("mae", ()): [("abs((fx - y))", "paper")],
        ("gce", ()): [
            ("((y * (1.0 - pow(fx, 0.7))) * 1.4285714285714286)", "robust"),
            ("((y * (1.0 - exp((0.7 * log(fx))))) * 1.4285714285714286)", "extended"),
        ],
        ("gce", (("q", 0.3),)): [("((y * (1.0 - pow(fx, 0.3))) * 3.3333333333333335)", "robust")],
        # alpha CE + beta (-A) (1 - p_y), and sum_c |p_c - y_c| = 2 (1 - p_y): 0.1 CE + 2 |fx - y|
        ("sce", ()): [("((0.1 * -(y * log(fx))) + (2.0 * abs((fx - y))))", "paper")],
        ("poly1", ()): [("(-(y * log(fx)) + (y * (1.0 - fx)))", "paper")],
        ("squared-error", ()): [("square((fx - y))", "paper")],
    },
    "regression": {
        ("mse", ()): [("square((fx - y))", "paper")],
        ("mae", ()): [("abs((fx - y))", "paper")],
        ("huber", ()): [("huber((fx - y))", "robust"), (HUBER_PAPER, "paper")],
        # delta^2 huber(r / delta)
        ("huber", (("delta", 0.5),)): [("(0.25 * huber(((fx - y) * 2.0)))", "robust")],
        ("log-cosh", ()): [("(log((exp((fx - y)) + exp((y - fx)))) - 0.6931471805599453)", "extended")],
    },
}
CASES = [
    (kind, name, params, text, needs)
    for kind, losses in WRITTEN.items()
    for (name, params), texts in losses.items()
    for text, needs in texts
]


def _batches(kind: str, seed: int, n: int = 5):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        if kind == "classification":
            logits = 2.0 * torch.randn(64, N_CLASSES, generator=gen, dtype=torch.float64)
            yield logits, torch.randint(0, N_CLASSES, (64,), generator=gen)
        else:
            pred = 3.0 * torch.randn(64, N_OUTPUTS, generator=gen, dtype=torch.float64)
            yield pred, pred + 2.0 * torch.randn(64, N_OUTPUTS, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize(
    ("kind", "name", "params", "text", "needs"), CASES, ids=[f"{c[1]}{dict(c[2]) or ''}-{c[4]}" for c in CASES]
)
def test_zoo_loss_written_in_the_grammar_is_exact(kind, name, params, text, needs):
    zoo = known_loss(name, kind, **dict(params))
    learned = LearnedLoss(text, task=kind).double()
    for output, target in _batches(kind, seed=len(text)):
        with torch.no_grad():
            expected, got = float(zoo(output, target)), float(learned(output, target))
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), (name, text)
    # the expression uses only the operators of the set it names, and the set below it lacks one
    used = {n.value for n in Expression.parse(text).nodes() if n.kind == "op"} - {"neg"}
    allowed = {op.name for op in searchable_operators(needs)}
    assert used <= allowed, (text, used - allowed)
    smaller = {"robust": "extended", "extended": "paper"}.get(needs)
    if smaller:
        assert used - {op.name for op in searchable_operators(smaller)}, (text, smaller)


def test_every_zoo_loss_is_written_with_the_robust_set():
    for kind, losses in WRITTEN.items():
        assert {name for name, _ in losses} | UNWRITTEN[kind] == set(KNOWN_LOSSES[kind])
        for texts in losses.values():
            assert any(set(check_operator_set(needs)) <= set(check_operator_set("robust")) for _, needs in texts)
    paper = {
        name
        for kind in WRITTEN
        for (name, _), texts in WRITTEN[kind].items()
        if any(needs == "paper" for _, needs in texts)
    }
    assert {"gce", "log-cosh"}.isdisjoint(paper)  # what the paper's grammar cannot write (module docstring)


def test_edge_weights_reach_the_huber_threshold():
    """``huber(w * (fx - y))`` scaled by ``1 / w^2`` is Huber with ``delta = 1 / w``: a search can learn delta."""
    delta = 0.3
    learned = LearnedLoss("huber((fx - y))", task="regression", weights=[1 / delta, 1.0, 1.0], scale=delta**2).double()
    zoo = known_loss("huber", "regression", delta=delta)
    for output, target in _batches("regression", seed=7):
        with torch.no_grad():
            assert float(learned(output, target)) == pytest.approx(float(zoo(output, target)), rel=1e-6)


# -- the new operators are total on the reals --------------------------------------------

SPECIAL = np.array(
    [
        0.0,
        -0.0,
        5e-324,
        1e-300,
        -1e-8,
        1e-7,
        0.5,
        -1.0,
        1.0,
        3.0,
        -7.5,
        1e8,
        -1e200,
        1e300,
        -1.7976931348623157e308,
        1.7976931348623157e308,
    ]
)


@pytest.mark.parametrize("name", ["pow", "huber"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_new_operators_total_with_finite_gradients(name, dtype):
    op = OPERATORS[name]
    a, b = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")
    if dtype == torch.float32:
        a, b = np.clip(a, -3e38, 3e38), np.clip(b, -3e38, 3e38)
    args = [torch.tensor(x.ravel(), dtype=dtype, requires_grad=True) for x in (a, b)[: op.arity]]
    out = op.torch(*args)
    assert torch.isfinite(out).all()
    grads = torch.autograd.grad(out.sum(), args, create_graph=True)
    assert all(torch.isfinite(g).all() for g in grads)
    second = torch.autograd.grad(grads[0].sum(), args[0], allow_unused=True)[0]
    assert second is None or torch.isfinite(second).all()  # the unrolled local search differentiates twice
    with np.errstate(all="ignore"):
        assert np.isfinite(op.numpy(*(x.ravel() for x in (a, b)[: op.arity]))).all()


def test_new_operator_values():
    pow_, huber = OPERATORS["pow"].numpy, OPERATORS["huber"].numpy
    assert float(pow_(0.25, 0.5)) == pytest.approx(0.5)
    assert float(pow_(-8.0, 1.0 / 3.0)) == pytest.approx(2.0)  # |a|^b
    assert float(pow_(2.0, 100.0)) == pytest.approx(16.0)  # exponent clipped to 4
    assert float(pow_(0.0, -4.0)) == pytest.approx(np.exp(20.0))  # guard 1e-7, then exp's cap
    assert float(huber(0.5)) == 0.125 and float(huber(-3.0)) == 2.5
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(
        OPERATORS["huber"].torch(x), torch.nn.functional.huber_loss(x, torch.zeros_like(x), reduction="none")
    )


def test_robust_set_is_selectable_and_searches():
    import evomal_sr as es
    from evomal_sr.core.presets import resolve_preset

    assert resolve_preset("quick", operators="robust").operators == "robust"
    for name in ("paper", "quick", "standard", "tiny"):
        assert resolve_preset(name).operators == "paper"  # no preset's default changed
    task = es.Task.builtin("iris", seed=0)
    search = es.LossSearch(
        preset="tiny",
        population=6,
        generations=1,
        operators="robust",
        guesses=["((y * (1.0 - pow(fx, 0.7))) * 1.4285714285714286)"],
    ).fit(task)
    assert any("pow" in text for text in search.evaluator_._results)
