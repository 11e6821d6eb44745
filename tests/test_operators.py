"""The operator registry: consistent entries, protected ops total, backends agreeing."""

from __future__ import annotations

import inspect
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.operators import (
    EXP_CAP,
    INFIX,
    JULIA_ALIASES,
    OPERATORS,
    PROTECTION_EPS,
    SEARCH_CONSTANTS,
    VARIABLES,
    get_operator,
    searchable_operators,
)

# The EvoMAL grammar (the paper's operator set).
DESIGN_TABLE = {
    "+": 2,
    "-": 2,
    "*": 2,
    "aq": 2,
    "min": 2,
    "max": 2,
    "abs": 1,
    "square": 1,
    "tanh": 1,
    "sign": 1,
    "log": 1,
    "sqrt": 1,
}
PROTECTED = ("aq", "log", "sqrt", "exp")
# Names Julia (Base) already defines; every other operator needs a Julia definition.
JULIA_BUILTINS = {"+", "-", "*", "min", "max", "abs", "tanh", "sign"}

# Awkward finite doubles: zero, subnormal, tiny, near the protection threshold, huge.
SPECIAL = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    1e-300,
    -1e-300,
    1e-8,
    -1e-8,
    PROTECTION_EPS,
    -PROTECTION_EPS,
    1e-7 * 1.0000001,
    0.5,
    -0.5,
    1.0,
    -1.0,
    3.0,
    -7.5,
    1e8,
    -1e8,
    1e154,
    1e200,
    -1e200,
    1e300,
    -1e300,
    sys.float_info.max,
    -sys.float_info.max,
]
finite64 = st.floats(allow_nan=False, allow_infinity=False)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
ALL = sorted(OPERATORS)


def _np(op, *args):
    with np.errstate(all="ignore"):
        return np.asarray(op.numpy(*(np.asarray(a, dtype=np.float64) for a in args)), dtype=np.float64)


def _torch(op, *args, dtype=torch.float64):
    return op.torch(*(torch.as_tensor(a, dtype=dtype) for a in args))


def _grid(arity):
    values = np.array(SPECIAL, dtype=np.float64)
    if arity == 1:
        return (values,)
    a, b = np.meshgrid(values, values, indexing="ij")
    return (a.ravel(), b.ravel())


# -- registry consistency ----------------------------------------------------------------


def test_design_table_operators_present_with_arity():
    for name, arity in DESIGN_TABLE.items():
        assert get_operator(name).arity == arity
    assert {op.name for op in searchable_operators()} == set(DESIGN_TABLE)
    assert OPERATORS["neg"].arity == 1 and not OPERATORS["neg"].searchable


@pytest.mark.parametrize("name", ALL)
def test_entry_is_consistent(name):
    op = OPERATORS[name]
    assert op.name == name
    assert op.arity in (1, 2)
    assert isinstance(op.complexity, int) and op.complexity >= 1
    assert callable(op.torch) and callable(op.numpy) and callable(op.sympy)
    assert isinstance(op.julia, str) and isinstance(op.julia_name, str) and op.julia_name
    if op.infix is not None:
        assert op.arity == 2 and INFIX[op.infix] == name
    # torch, numpy and sympy definitions all take `arity` arguments
    args = [torch.tensor([0.3, -1.2], dtype=torch.float64)] * op.arity
    assert op.torch(*args).shape == (2,)
    assert np.shape(_np(op, *[[0.3, -1.2]] * op.arity)) == (2,)
    sym_params = list(inspect.signature(op.sympy).parameters)
    assert len(sym_params) == op.arity + 1  # (sp, *args)
    symbols = sp.symbols(f"a0:{op.arity}", real=True)
    result = op.sympy(sp, *symbols)
    assert isinstance(result, sp.Basic)
    assert result.free_symbols <= set(symbols)


def test_lookup_and_aliases():
    assert get_operator("plog") is OPERATORS["log"]
    assert get_operator("psqrt") is OPERATORS["sqrt"]
    assert JULIA_ALIASES == {"plog": "log", "psqrt": "sqrt", "pexp": "exp", "ppow": "pow"}
    assert set(INFIX) == {"+", "-", "*"}
    assert VARIABLES == ("y", "fx")
    assert SEARCH_CONSTANTS == (1.0, -1.0)
    assert get_operator("pexp") is OPERATORS["exp"]
    with pytest.raises(ExpressionError, match="cosh"):
        get_operator("cosh")


def test_operator_sets():
    from evomal_sr.core.presets import CHOICES
    from evomal_sr.grammar.operators import OPERATOR_SETS, check_operator_set, searchable_operators

    assert set(OPERATOR_SETS) == set(CHOICES["operators"])
    paper = [op.name for op in searchable_operators("paper")]
    assert paper == ["+", "-", "*", "aq", "min", "max", "abs", "square", "tanh", "sign", "log", "sqrt"]
    assert [op.name for op in searchable_operators("extended")] == [*paper, "exp"]
    with pytest.raises(ExpressionError, match="'big'.*paper, extended"):
        check_operator_set("big")
    # exp is protected: capped at EXP_CAP, so the loss stays finite where it would overflow
    import torch

    value = OPERATORS["exp"].torch(torch.tensor([100.0, 0.0]))
    assert torch.isfinite(value).all() and float(value[1]) == 1.0
    with pytest.raises(ValueError, match="__import__"):
        get_operator("__import__")


@pytest.mark.parametrize("name", ALL)
def test_julia_definitions(name):
    op = OPERATORS[name]
    if op.julia_name in JULIA_BUILTINS:
        return
    # custom operators carry a one-line Julia definition of the name SR.jl prints
    match = re.fullmatch(rf"{re.escape(op.julia_name)}\(([^)]*)\)\s*=\s*(.+)", op.julia)
    assert match, f"{name}: Julia definition {op.julia!r} does not define {op.julia_name}(...)"
    params = [p.strip() for p in match.group(1).split(",")]
    assert len(params) == op.arity and all(p.isidentifier() for p in params)
    assert all(p in match.group(2) for p in params)
    if name in ("log", "sqrt"):
        assert "abs(" in op.julia and "1e-7" in op.julia
    if name == "aq":
        assert "sqrt(" in op.julia


# -- definitions -------------------------------------------------------------------------


def test_protected_values():
    aq, log, sqrt, exp = (OPERATORS[n].numpy for n in PROTECTED)
    assert float(aq(3.0, 0.0)) == 3.0
    assert float(aq(2.0, math.sqrt(3.0))) == pytest.approx(1.0)
    with np.errstate(over="ignore"):
        assert float(aq(-4.0, 1e300)) == 0.0  # b^2 overflows to inf: still finite
    assert float(log(0.0)) == pytest.approx(math.log(PROTECTION_EPS))
    assert float(log(-math.e)) == pytest.approx(1.0)
    assert float(sqrt(-4.0)) == pytest.approx(2.0)
    assert float(exp(1e6)) == pytest.approx(math.exp(EXP_CAP)) and float(exp(-1.0)) == pytest.approx(math.exp(-1))
    assert float(sqrt(0.0)) == pytest.approx(math.sqrt(PROTECTION_EPS))
    for name in PROTECTED:
        op = OPERATORS[name]
        args = (0.0,) * op.arity
        assert float(_torch(op, *args)) == pytest.approx(float(_np(op, *args)))


@pytest.mark.parametrize("name", ALL)
def test_torch_and_numpy_agree_on_special_values(name):
    op = OPERATORS[name]
    args = _grid(op.arity)
    expected = _np(op, *args)
    got = _torch(op, *args).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, equal_nan=True)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(ALL), a=finite64, b=finite64)
def test_torch_and_numpy_agree(name, a, b):
    op = OPERATORS[name]
    args = (a, b)[: op.arity]
    expected = _np(op, *args)
    got = _torch(op, *args).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", PROTECTED)
def test_protected_ops_finite_on_special_values(name):
    op = OPERATORS[name]
    args = _grid(op.arity)
    assert np.isfinite(_np(op, *args)).all()
    assert torch.isfinite(_torch(op, *args)).all()
    args32 = [np.clip(a, -3e38, 3e38) for a in args]
    assert torch.isfinite(_torch(op, *args32, dtype=torch.float32)).all()


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(PROTECTED), a=finite64, b=finite64, a32=finite32, b32=finite32)
def test_protected_ops_total_on_finite_inputs(name, a, b, a32, b32):
    op = OPERATORS[name]
    args = (a, b)[: op.arity]
    assert np.isfinite(_np(op, *args)).all()
    assert torch.isfinite(_torch(op, *args)).all()
    args32 = (a32, b32)[: op.arity]
    assert torch.isfinite(_torch(op, *args32, dtype=torch.float32)).all()


@settings(max_examples=100, deadline=None)
@given(a=finite64, b=finite64)
def test_protected_ops_gradients_finite(a, b):
    for name in PROTECTED:
        op = OPERATORS[name]
        ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        args = (ta, tb)[: op.arity]
        out = op.torch(*args)
        grads = torch.autograd.grad(out, args)
        assert all(torch.isfinite(g).all() for g in grads), (name, a, b, grads)


NICE = [-9.5, -2.0, -0.7, -1e-2, 1e-2, 0.3, 1.0, 4.25, 30.0]


@pytest.mark.parametrize("name", ALL)
def test_sympy_agrees_with_numpy(name):
    """Away from the 1e-7 guard (and exp's cap) the SymPy display form is the same function."""
    op = OPERATORS[name]
    nice = [a for a in NICE if a < EXP_CAP] if name == "exp" else NICE
    for args in [(a,) for a in nice] if op.arity == 1 else [(a, b) for a in nice for b in nice[::2]]:
        value = complex(op.sympy(sp, *(sp.Float(x) for x in args)).evalf())
        assert value.imag == 0
        assert value.real == pytest.approx(float(_np(op, *args)), rel=1e-12, abs=1e-300)


def test_registry_layers_do_not_import_torch_or_julia():
    code = (
        "import sys, evomal_sr, evomal_sr.grammar.expression, evomal_sr.grammar.parser, evomal_sr.grammar.operators\n"
        "bad = [m for m in ('torch', 'juliacall', 'pysr') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
