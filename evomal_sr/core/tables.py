"""HTML tables for notebooks (``_repr_html_`` of fronts and meta-test reports), every cell escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence


def html_table(
    head: Sequence[str], body: Sequence[Sequence[object]], *, before: Sequence[str] = (), after: Sequence[str] = ()
) -> str:
    """An HTML table; ``before`` and ``after`` are paragraphs above and below it. All text is escaped.

    Examples
    --------
    >>> html_table(["a"], [["<b>"]], after=["x & y"]).partition("<tbody>")[2]
    '<tr><td>&lt;b&gt;</td></tr></tbody></table><p>x &amp; y</p></div>'
    """
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    above = "".join(f"<p>{html.escape(text)}</p>" for text in before if text)
    below = "".join(f"<p>{html.escape(text)}</p>" for text in after if text)
    return f"<div>{above}<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>{below}</div>"
