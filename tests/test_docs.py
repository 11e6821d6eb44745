"""The documentation site's sources: the API page covers the public objects; the build hooks work.

``mkdocs build --strict`` itself runs in ``.ci/run``; these tests check, without building,
what would otherwise rot silently.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import evomal_sr

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", DOCS / "_hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_page_documents_every_public_object():
    page = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: (\S+)", page, flags=re.MULTILINE))
    wanted = {f"evomal_sr.{module}.{name}" for name, module in evomal_sr._LAZY.items()}
    assert wanted <= documented, sorted(wanted - documented)
    assert "evomal_sr.errors" in documented  # the error types of evomal_sr.__all__


def test_every_page_in_docs_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in DOCS.glob("*.md")}
    in_nav = set(re.findall(r"^  - [^:]+: (\S+\.md)$", config, flags=re.MULTILINE))
    assert pages == in_nav


def test_readme_include_takes_sections_and_fixes_links():
    include = _load("include")
    how = include.readme(section="How it works")
    assert "## How it works" not in how and "`evomal_sr/grammar/`" in how
    assert "](docs/" not in how  # repository-relative links point at the site's pages
    guide = include.readme(exclude="How it works")
    assert guide.startswith("# evomal-sr") and "## Quick start" in guide and "## How it works" not in guide
    assert (
        include._fix_links("[a](docs/scaling.md#who) [b](benchmarks/RESULTS.md) [c](https://x.org/y)")
        == "[a](scaling.md#who) b (`benchmarks/RESULTS.md`) [c](https://x.org/y)"
    )


def test_a_renamed_readme_section_fails_the_build():
    include = _load("include")
    with pytest.raises(ValueError, match="no section"):
        include.readme(section="How it worked")


def test_examples_page_has_every_example():
    text = _load("include").examples()
    for script in sorted((ROOT / "examples").glob("[0-9][0-9]_*.py")):
        assert f"## `examples/{script.name}`" in text
    assert text.count("```bash") == text.count("```") // 2


def test_sphinx_roles_become_links_or_code_spans():
    pytest.importorskip("griffe")
    roles = _load("sphinx_roles")
    targets = {"evomal_sr.data.tasks.Task"}
    text = "see :class:`~evomal_sr.data.tasks.Task`, :meth:`fit` and :mod:`evomal_sr.parallel`"
    assert (
        roles.markdown_roles(text, targets) == "see [`Task`][evomal_sr.data.tasks.Task], `fit` and `evomal_sr.parallel`"
    )
    assert "evomal_sr.search.estimator.LossSearch" in roles.documented()
