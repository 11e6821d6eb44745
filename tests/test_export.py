"""Exports: standalone torch modules (checked without evomal-sr importable), JSON, SymPy, LaTeX."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expressions

from evomal_sr import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.operators import EXP_CAP, OPERATORS, PROTECTION_EPS
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.results.export import EXPORT_FORMATS, export_loss, torch_source

# Between them these use every operator of the registry (checked below).
EXPRESSIONS = [
    "-(y * log(fx))",
    "square((fx - y))",
    "aq((y - fx), sqrt(fx))",
    "(min(y, fx) + max(fx, -0.5))",
    "(abs((y - fx)) * tanh(fx))",
    "(sign((y - fx)) * (fx - y))",
    "((2.5 * y) + aq(-1.0, fx))",
    "log(-(fx))",
    "-(y * exp((0.7 * log(fx))))",
    "exp((30.0 * fx))",
    "(y * (1.0 - pow(fx, 0.7)))",
    "huber((pow((fx - y), 1.5) - y))",
    "fx",
    "y",
    "1.5",
    "1e+300",
]
KINDS = ["classification", "regression"]


def test_expressions_cover_every_operator():
    used = {n.value for text in EXPRESSIONS for n in Expression.parse(text).nodes() if n.kind == "op"}
    assert used == set(OPERATORS)


def _weights(n: int, seed: int) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    return (1.0 + 0.2 * torch.randn(n, generator=gen)).tolist()


def _cases():
    """(loss, inputs) pairs: classification with labels, one-hot and a single output; regression 1-D/2-D."""
    gen = torch.Generator().manual_seed(1)
    inputs = {
        "classification": [
            (torch.randn(8, 3, generator=gen), torch.randint(0, 3, (8,), generator=gen)),
            (torch.randn(8, 3, generator=gen), torch.eye(3)[torch.randint(0, 3, (8,), generator=gen)]),
            (torch.randn(8, 1, generator=gen), torch.randint(0, 2, (8,), generator=gen).float()),
            (torch.randn(3, 3, generator=gen), torch.tensor([2, 0, 1])),  # batch == classes
        ],
        "regression": [
            (torch.randn(8, generator=gen), torch.randn(8, generator=gen)),
            (torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen)),
        ],
    }
    cases = []
    for i, text in enumerate(EXPRESSIONS):
        for kind in KINDS:
            n = Expression.parse(text).size - 1
            loss = LearnedLoss(text, task=kind, weights=_weights(n, i))
            cases.append((loss, inputs[kind]))
    return cases


# A loader that cannot see evomal_sr: the exported file must need nothing but torch.
_STANDALONE = r"""
import importlib.util, sys
sys.modules["evomal_sr"] = None  # any `import evomal_sr` now raises ImportError
import torch
root, count = sys.argv[1], int(sys.argv[2])
out = {}
for i in range(count):
    spec = importlib.util.spec_from_file_location(f"exported_{i}", f"{root}/loss_{i}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loss = module.LearnedLoss()
    cases = torch.load(f"{root}/inputs_{i}.pt")
    out[i] = [loss(output, target).detach() for output, target in cases]
assert not any(name.startswith("evomal_sr") and sys.modules[name] is not None for name in sys.modules)
torch.save(out, f"{root}/values.pt")
"""


def test_torch_export_is_standalone_and_agrees_with_load(tmp_path):
    cases = _cases()
    expected = []
    for i, (loss, inputs) in enumerate(cases):
        saved = tmp_path / f"loss_{i}.json"
        loss.save(saved)
        loaded = LearnedLoss.load(saved)
        (tmp_path / f"loss_{i}.py").write_text(export_loss(loaded, "torch"))
        torch.save(inputs, tmp_path / f"inputs_{i}.pt")
        expected.append([loaded(output, target).detach() for output, target in inputs])
    proc = subprocess.run(
        [sys.executable, "-c", _STANDALONE, str(tmp_path), str(len(cases))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    values = torch.load(tmp_path / "values.pt")
    for i, (loss, _) in enumerate(cases):
        for got, want in zip(values[i], expected[i]):
            assert got.shape == want.shape == ()
            torch.testing.assert_close(
                got, want, rtol=0, atol=0, equal_nan=True, msg=f"{loss.expression} ({loss.task})"
            )


def _exec_module(source: str) -> types.ModuleType:
    module = types.ModuleType("exported_loss")
    exec(compile(source, "<exported>", "exec"), module.__dict__)
    return module


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=expressions(max_depth=5),
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.5, 1.0, 10.0]),
    loss_scale=st.sampled_from([1.0, 0.37]),
)
def test_torch_source_values_match_learned_loss(expr, kind, seed, scale, loss_scale):
    loss = LearnedLoss(expr, task=kind, weights=_weights(expr.size - 1, seed), scale=loss_scale)
    module = _exec_module(torch_source(loss))
    gen = torch.Generator().manual_seed(seed)
    output = scale * torch.randn(6, 3, generator=gen)
    target = torch.randint(0, 3, (6,), generator=gen) if kind == "classification" else torch.randn(6, 3)
    exported = module.LearnedLoss()
    assert exported.weights.tolist() == loss.weights.tolist()
    torch.testing.assert_close(exported(output, target), loss(output, target), rtol=0, atol=0, equal_nan=True)
    y, fx = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    torch.testing.assert_close(
        torch.broadcast_to(exported.elementwise(y, fx), fx.shape),
        loss.elementwise(y, fx),
        rtol=0,
        atol=0,
        equal_nan=True,
    )


def test_exported_module_is_differentiable_and_documented():
    loss = LearnedLoss("aq(y, fx)", task="classification", weights=[1.1, 0.9])
    source = torch_source(loss, filename="my_loss.py")
    assert "from my_loss import LearnedLoss" in source
    assert "evomal_sr" not in source.replace("evomal-sr", "")
    module = _exec_module(source)
    logits = torch.randn(5, 3, requires_grad=True)
    module.LearnedLoss()(logits, torch.tensor([0, 1, 2, 0, 1])).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert module.EXPRESSION == "aq(y, fx)" and module.TASK == "classification"


_SPECIAL = [0.0, -0.0, 1e-8, -1e-8, 1e-7, 0.5, -2.0, 3.0, 1e30, -1e30, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_torch_source_agrees_with_torch(name):
    op = OPERATORS[name]
    args = ", ".join("ab"[: op.arity])
    namespace = {"torch": torch, "PROTECTION_EPS": PROTECTION_EPS, "EXP_CAP": EXP_CAP}
    exec(f"def f({args}):\n    return {op.torch_source}\n", namespace)
    values = torch.tensor(_SPECIAL, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        a = torch.cat([values.repeat_interleave(len(_SPECIAL)), torch.randn(50, generator=gen, dtype=torch.float64)])
        b = torch.cat([values.repeat(len(_SPECIAL)), torch.randn(50, generator=gen, dtype=torch.float64)])
        a, b = a.to(dtype), b.to(dtype)
        inputs = (a, b)[: op.arity]
        torch.testing.assert_close(namespace["f"](*inputs), op.torch(*inputs), rtol=0, atol=0, equal_nan=True)


# -- text formats --------------------------------------------------------------------------------


def test_export_json_round_trips():
    loss = LearnedLoss(
        "-(y * log(fx))", task="classification", weights=[0.5, 1.5, 2.0, 1.25], metadata={"fitness": 0.1}
    )
    text = export_loss(loss, "json")
    back = LearnedLoss.from_dict(json.loads(text))
    assert str(back.expression) == str(loss.expression)
    assert back.weights.tolist() == loss.weights.tolist()
    assert back.metadata == {"fitness": 0.1}


def test_export_sympy_and_latex():
    loss = LearnedLoss("-(y * log(fx))", task="classification", weights=[0.5, 1.0, 1.0, 1.0])
    text = export_loss(loss, "sympy").strip()
    y, fx = sympy.Symbol("y", real=True), sympy.Symbol("fx", real=True)
    parsed = sympy.sympify(text, locals={"y": y, "fx": fx})
    assert sympy.simplify(parsed - (-0.5 * y * sympy.log(sympy.Abs(fx)))) == 0
    latex = export_loss(loss, "latex").strip()
    assert r"\log" in latex and "f(x)" in latex and "0.5" in latex
    assert "\n" not in latex and "\n" not in text


def test_export_unit_weights_are_the_expression():
    loss = LearnedLoss("square((fx - y))", task="regression")
    y, fx = sympy.symbols("y fx", real=True)
    parsed = sympy.sympify(export_loss(loss, "sympy"), locals={"y": y, "fx": fx})
    assert sympy.expand(parsed - (fx - y) ** 2) == 0


@pytest.mark.parametrize("fmt", ["onnx", "", "JSON", None, "pt"])
def test_unknown_format(fmt):
    with pytest.raises(ConfigError, match="unknown export format"):
        export_loss(LearnedLoss("(y * fx)"), fmt)


def test_export_formats_listed():
    assert set(EXPORT_FORMATS) == {"json", "torch", "sympy", "latex"}
