"""Griffe extension: Sphinx roles in docstrings (``:class:`~evomal_sr.data.tasks.Task```) as Markdown.

The package's numpydoc docstrings use Sphinx cross-reference roles, which Markdown would show
as raw text. A role whose target is one of the objects documented in ``docs/api.md`` (a
``::: path`` line) becomes a link to it; any other becomes a code span, with the short name
when the role has ``~``. Run by mkdocstrings (``extensions`` in ``mkdocs.yml``); the docstrings
themselves are not changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

API_PAGE = Path(__file__).resolve().parents[1] / "api.md"
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`<>]+)`")


def documented() -> set[str]:
    """The object paths of the API page's ``::: path`` lines."""
    lines = API_PAGE.read_text(encoding="utf-8").splitlines()
    return {line[4:].strip() for line in lines if line.startswith("::: ")}


def markdown_roles(text: str, targets: set[str]) -> str:
    """``text`` with every Sphinx role replaced by a link (documented target) or a code span."""

    def repl(match: re.Match) -> str:
        short, target = match.group(1) == "~", match.group(2).strip()
        label = target.rsplit(".", 1)[-1] if short else target
        return f"[`{label}`][{target}]" if target in targets else f"`{label}`"

    return ROLE.sub(repl, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every loaded object's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.targets = documented()

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = markdown_roles(obj.docstring.value, self.targets)
