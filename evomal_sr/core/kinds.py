"""Task kinds: what a loss is for, in one small module every layer may import.

Examples
--------
>>> check_task_kind("regression")
'regression'
"""

from __future__ import annotations

from evomal_sr.errors import ConfigError

#: The task kinds a loss or a task can have.
TASK_KINDS = ("classification", "regression")


def check_task_kind(kind, *, error: type[Exception] = ConfigError, hint: str = "") -> str:
    """Return ``kind`` if it is a known task kind, else raise ``error`` naming the valid ones."""
    if not isinstance(kind, str) or kind not in TASK_KINDS:
        raise error(f"unknown task kind {kind!r}; use one of {', '.join(TASK_KINDS)}{hint}")
    return kind
