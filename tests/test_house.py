"""The house rules a newcomer relies on: the deprecated alias, light imports, the files a project ships."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_old_evaluator_module_warns_and_still_gives_the_evaluator():
    sys.modules.pop("evomal_sr.evaluator", None)  # an earlier import would not warn again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("evomal_sr.evaluator")
    from evomal_sr.scoring.evaluator import Evaluator, FitnessResult

    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert deprecations and "evomal_sr.scoring.evaluator" in str(deprecations[0].message)
    assert old.Evaluator is Evaluator and old.FitnessResult is FitnessResult


def test_the_top_level_evaluator_is_the_new_one_and_does_not_warn():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning); import evomal_sr, sys; "
        "from evomal_sr.scoring.evaluator import Evaluator; assert evomal_sr.Evaluator is Evaluator; "
        "assert 'evomal_sr.evaluator' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_importing_the_pysr_engine_loads_neither_torch_nor_julia():
    modules = ["evomal_sr.engines.pysr"] + [
        f"evomal_sr.engines.pysr.{m}" for m in ("text", "bridge", "runtime", "options", "engine")
    ]
    code = (
        f"import sys\nfor m in {modules!r}:\n    __import__(m)\n"
        "loaded = sorted({'torch', 'juliacall', 'pysr'} & set(sys.modules))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_package_is_typed_and_licensed():
    assert (ROOT / "evomal_sr" / "py.typed").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_every_tool_ci_runs_is_in_the_dev_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dev = {re.split(r"[<>=!~\[ ;]", req)[0] for req in project["project"]["optional-dependencies"]["dev"]}
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tools = {"ruff": "ruff", "mypy": "mypy", "lint-imports": "import-linter", "pytest": "pytest", "mkdocs": "mkdocs"}
    for command, package in tools.items():
        if f".venv/bin/{command}" in ci or f"-m {command}" in ci:
            if command == "mkdocs" and not (ROOT / "mkdocs.yml").exists():
                continue
            assert package in dev, f"{command} runs in .ci/run but {package} is not in the dev extra"


def test_a_nodes_name_and_number_are_typed_and_refuse_the_other_kind():
    from evomal_sr.grammar.nodes import Node

    product = Node.apply("*", (Node.variable("y"), Node.constant(2)))
    assert product.name == "*" and product.children[0].name == "y" and product.children[1].number == 2.0
    with pytest.raises(TypeError, match="has no name"):
        _ = product.children[1].name
    with pytest.raises(TypeError, match="not a constant"):
        _ = product.number
