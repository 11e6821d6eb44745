"""MkDocs hook: pages that include the README (or parts of it) and the examples' docstrings at build time.

Directives, each alone on a line of a page in ``docs/``:

- ``<!-- include-readme -->``: the whole README;
- ``<!-- include-readme exclude="How it works" -->``: the README without those ``##`` sections
  (several titles separated by ``|``);
- ``<!-- include-readme section="How it works" -->``: the text of one ``##`` section (without its heading);
- ``<!-- include-examples -->``: one subsection per ``examples/NN_*.py``: its docstring and how to run it.

Links the README makes relative to the repository root (``docs/scaling.md``) are rewritten to
the site's pages; links to other repository files are rewritten to code spans, so that the
strict build checks every remaining link. Nothing is copied into ``docs/``: the pages cannot
drift from the README.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r'^<!-- include-(readme|examples)(?: (section|exclude)="([^"]*)")? -->$', re.MULTILINE)
LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _sections(text: str) -> list[tuple[str, str]]:
    """``(title, text)`` per ``##`` section; the part before the first has the title ``""``."""
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    return [(p.splitlines()[0][3:].strip() if p.startswith("## ") else "", p) for p in parts]


def _fix_links(text: str) -> str:
    def repl(match: re.Match) -> str:
        label, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if "://" in target or target.startswith("mailto:"):
            return match.group(0)
        if target.startswith("docs/") and (ROOT / target).is_file():
            return f"[{label}]({target[len('docs/') :]}{anchor})"
        return f"`{target}`" if label.strip("`") == target else f"{label} (`{target}`)"

    return LINK.sub(repl, text)


def readme(section: str | None = None, exclude: str | None = None) -> str:
    """The README's text, or one section of it, or all but some sections; links fixed for the site."""
    parts = _sections((ROOT / "README.md").read_text(encoding="utf-8"))
    titles = [t for t, _ in parts]
    wanted = {section} if section else set((exclude or "").split("|")) - {""}
    missing = sorted(wanted - set(titles))
    if missing:  # a renamed README section must fail the build, not silently vanish
        raise ValueError(f"README.md has no section {missing}; its sections are {titles[1:]}")
    if section:
        chosen = [text.partition("\n")[2].lstrip("\n") for title, text in parts if title == section]
    else:
        chosen = [text for title, text in parts if title not in wanted]
    return _fix_links("".join(chosen))


def examples() -> str:
    """A subsection per example script: its docstring (numpydoc headings as bold lines) and its path."""
    out = []
    for path in sorted((ROOT / "examples").glob("[0-9][0-9]_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        title, _, body = doc.partition("\n")
        body = re.sub(r"^(\w[\w ]*)\n-+$", r"**\1**\n", body.strip(), flags=re.MULTILINE)
        body = body.replace("::\n\n", ":\n\n```bash\n", 1)
        if "```bash\n" in body:
            head, _, code = body.partition("```bash\n")
            lines = code.splitlines()
            code_lines = [line[4:] if line.startswith("    ") else line for line in lines]
            body = head + "```bash\n" + "\n".join(code_lines).strip("\n") + "\n```"
        out.append(f"## `examples/{path.name}`\n\n{title}\n\n{body}\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    def repl(match: re.Match) -> str:
        if match.group(1) == "examples":
            return examples()
        key, value = match.group(2), match.group(3)
        return readme(**({key: value} if key else {}))

    return DIRECTIVE.sub(repl, markdown)
