"""Error messages on the command line: the API's words become the command's flags; file errors name the file.

The library's messages speak to Python callers (``kind='classification'``,
``resume=True``); the command line says ``--kind classification`` and
``--resume`` instead, so :func:`cli_words` rewrites those few phrases.
"""

from __future__ import annotations

import errno
import re

#: API phrase (a regular expression) -> what the command line calls it. A quoted
#: name (``'label_noise'``, a field of a file) and a path (``runs/out_dir``) are left alone.
CLI_WORDS: tuple[tuple[str, str], ...] = (
    (r"\((?:features|drop) / (--[a-z-]+)\)", r"(\1)"),  # "(features / --features)" -> "(--features)"
    (r"--(resume|force) \((?:resume|force)=True\)", r"--\1"),
    (r"\bkind='(classification|regression)'", r"--kind \1"),
    (r"\b(resume|force)=True\b", r"--\1"),
    (r"(?<![\w'/\\.-])out_dir(?![\w'/\\.-])", "--out"),  # not in a path or a quoted name
    (r"(?<![\w'/\\.-])label_noise(?![\w'/\\.-])", "--label-noise"),
)

#: Error numbers that mean a file could not be written (a full disk or quota, a read-only or too small one).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def cli_words(message: str) -> str:
    """``message`` with the API's keyword arguments replaced by the command line's flags.

    Examples
    --------
    >>> cli_words("the integer target is ambiguous; pass kind='classification' or kind='regression'")
    'the integer target is ambiguous; pass --kind classification or --kind regression'
    >>> cli_words("'runs/x' already holds a run; add resume=True to continue it or force=True to start it over")
    "'runs/x' already holds a run; add --resume to continue it or --force to start it over"
    """
    for pattern, replacement in CLI_WORDS:
        message = re.sub(pattern, replacement, message)
    return message


def os_error_text(exc: OSError) -> str:
    """One line for an :class:`OSError`: the file it concerns, what went wrong, without ``[Errno N]``.

    Examples
    --------
    >>> os_error_text(OSError(errno.ENOSPC, "No space left on device", "runs/x/checkpoint.json"))
    "could not write 'runs/x/checkpoint.json': No space left on device (the disk is full)"
    >>> os_error_text(PermissionError(errno.EACCES, "Permission denied", "/root/runs"))
    "'/root/runs': Permission denied"
    """
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (the disk is full)" if exc.errno == errno.ENOSPC else " (the disk quota is used up)"
    if exc.filename is None:
        return reason
    if exc.errno in WRITE_ERRNOS:
        return f"could not write {str(exc.filename)!r}: {reason}"
    return f"{str(exc.filename)!r}: {reason}"


#: Class names shown by ``front``, at most (a hostile file's list stays short).
CLASSES_SHOWN = 30


def class_names_line(config) -> str | None:
    """``classes: 0=cat, 1=dog`` from a run's ``config["task"]["classes"]``; ``None`` when it has none.

    Examples
    --------
    >>> class_names_line({"task": {"classes": ["cat", "dog"]}})
    'classes: 0=cat, 1=dog'
    """
    from evomal_sr.core.fileio import short_repr

    task = config.get("task") if isinstance(config, dict) else None
    names = task.get("classes") if isinstance(task, dict) else None
    if not isinstance(names, list) or not names:
        return None
    shown = [
        n if isinstance(n, str) and len(n) <= 40 and n.isprintable() else short_repr(n) for n in names[:CLASSES_SHOWN]
    ]
    more = f", ... ({len(names)} in all)" if len(names) > CLASSES_SHOWN else ""
    return "classes: " + ", ".join(f"{i}={name}" for i, name in enumerate(shown)) + more
