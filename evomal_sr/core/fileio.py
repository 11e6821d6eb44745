"""Atomic file writes and guarded JSON reads.

Writes go to a temporary file in the destination folder, are flushed to disk,
then renamed over the target, so a reader (or a run killed mid-write) never
sees a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

#: Largest JSON file the package will read (guards against hostile inputs).
MAX_JSON_BYTES = 64 * 1024 * 1024


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (no NaN literals)."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, error: type[Exception], what: str) -> Any:
    """Read a JSON file, raising ``error`` with a readable message on any problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    if size > MAX_JSON_BYTES:
        raise error(f"{what} {str(path)!r} is {size} bytes; at most {MAX_JSON_BYTES} are read")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {str(path)!r} is not valid JSON: {exc}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


def is_number(value) -> bool:
    """A JSON number: ``int`` or ``float`` but not ``bool`` (which JSON keeps apart)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value) -> bool:
    """A finite JSON number; an integer too large for a float is not one."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def float_to_json(value: float) -> float | None:
    """JSON has no infinity: an infinite fitness (rejected candidate) is stored as ``null``."""
    return None if math.isinf(value) else value


def float_from_json(value) -> float:
    """Inverse of :func:`float_to_json`: ``null`` reads back as ``inf``."""
    return math.inf if value is None else float(value)


def _refuse_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def check_header(data: Any, fmt: str, version: int, *, what: str, error: type[Exception]) -> dict:
    """Return ``data`` if it is a JSON object of format ``fmt`` and ``version``; else raise ``error``.

    Every evomal-sr file (learned losses, baseline losses, fronts, meta-test
    reports, checkpoints) starts with these two fields; this is their one check.

    Examples
    --------
    >>> check_header({"format": "x", "version": 1}, "x", 1, what="thing", error=ValueError)["version"]
    1
    """
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"not an evomal-sr {what} (expected format {fmt!r})")
    if data.get("version") != version:
        raise error(f"unsupported {what} version {data.get('version')!r}; this evomal-sr reads version {version}")
    return data
