"""The layer order of the README's "How it works", checked by import-linter.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); ``.ci/run``
runs ``lint-imports`` on them and these tests run the same check, so an upward
import fails both. Imports inside functions count as much as those at the top
of a module. The last tests plant upward imports in a copy of the package and
check that the same contracts catch them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the project's contracts on the ``evomal_sr`` found in ``package_parent``."""
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        f"sys.exit(lint_imports(config_filenames=({str(CONFIG)!r},), no_cache=True, no_logo=True))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=package_parent, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_package_keeps_its_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


PLANTED = {
    # module-level upward import: losses may not use training
    "module-level": (
        "losses/_planted.py",
        "from evomal_sr.training.loop import train_population\n",
        "evomal_sr.losses._planted -> evomal_sr.training.loop",
    ),
    # lazy import inside a function: core may not use the CLI
    "inside-a-function": (
        "core/_planted.py",
        "def late():\n    from evomal_sr.cli import main\n    return main\n",
        "evomal_sr.core._planted -> evomal_sr.cli",
    ),
    # the grammar may not reach the data layer, even through `import x.y`
    "plain-import": (
        "grammar/_planted.py",
        "import evomal_sr.data.tasks\n",
        "evomal_sr.grammar._planted -> evomal_sr.data.tasks",
    ),
    # nothing in the package imports its own deprecated alias
    "deprecated-alias": (
        "scoring/_planted.py",
        "from evomal_sr.evaluator import Evaluator\n",
        "evomal_sr.scoring._planted -> evomal_sr.evaluator",
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_planted_upward_import_is_caught(tmp_path, case):
    copy = tmp_path / "evomal_sr"
    shutil.copytree(ROOT / "evomal_sr", copy, ignore=shutil.ignore_patterns("__pycache__"))
    path, source, reported = PLANTED[case]
    (copy / path).write_text(source, encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 kept, 1 broken" in result.stdout, result.stdout
    assert reported in result.stdout, result.stdout


def test_the_unchanged_copy_passes(tmp_path):
    """The copy itself is clean, so the failures above come from the planted line alone."""
    shutil.copytree(ROOT / "evomal_sr", tmp_path / "evomal_sr", ignore=shutil.ignore_patterns("__pycache__"))
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
