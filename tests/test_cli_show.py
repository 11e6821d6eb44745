"""`evomal-sr --version` and `evomal-sr show`: output, and one-line errors with status 2."""

from __future__ import annotations

import pytest
from clihelpers import invoke

from evomal_sr import __version__


def _fields(stdout: str) -> dict[str, str]:
    rows = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        rows[key] = value.strip()
    return rows


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert "evomal-sr" in result.stdout and __version__ in result.stdout


def test_help():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "show" in result.stdout


def test_show_prints_complexity_and_latex():
    result = invoke("show", "aq(y, fx) + log(fx)")
    assert result.exit_code == 0, result.stderr
    rows = _fields(result.stdout)
    assert rows["expression"] == "(aq(y, fx) + log(fx))"
    assert rows["complexity"] == "6"
    assert rows["depth"] == "3"
    assert rows["edges"] == "5"
    assert "sympy" in rows
    assert r"\log" in rows["latex"] and r"\sqrt" in rows["latex"] and "f(x)" in rows["latex"]
    assert result.stderr == ""


def test_show_leading_minus_is_not_an_option():
    result = invoke("show", "-(y * log(fx))")
    assert result.exit_code == 0, result.stderr
    rows = _fields(result.stdout)
    assert rows["expression"] == "-(y * log(fx))"
    assert rows["complexity"] == "5"
    assert r"\log" in rows["latex"]


def test_show_julia_alias():
    result = invoke("show", "plog(fx) * y")
    assert result.exit_code == 0
    assert _fields(result.stdout)["expression"] == "(log(fx) * y)"


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "__import__('os').system('x')",
        "fx.__class__",
        "lambda: 1",
        "cosh(fx)",
        "fx / y",
        "aq(fx)",
        "",
        "1e999",
        "fx\n+ y",
        "log(" * 150 + "fx" + ")" * 150,
    ],
)
def test_show_bad_expression_exits_2_with_one_line(text):
    result = invoke("show", text)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_show_import_names_the_token_and_has_no_side_effect(tmp_path):
    sentinel = tmp_path / "pwned"
    result = invoke("show", f"__import__('os').system('touch {sentinel}')")
    assert result.exit_code == 2
    assert "__import__" in result.stderr
    assert not sentinel.exists()


def test_show_missing_argument_is_a_usage_error():
    result = invoke("show")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
