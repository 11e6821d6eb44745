"""Atomic file writes, bounded reads of regular files, and guarded JSON reads.

Writes go to a temporary file in the destination folder, are flushed to disk,
then renamed over the target, so a reader (or a run killed mid-write) never
sees a half-written file. The file gets the mode a plain ``open`` would give
(the user's umask for a new file, the old mode for a replaced one), not the
private ``0600`` of :func:`tempfile.mkstemp`.

Reads accept only regular files and stop at a size limit: a named pipe would
block forever and ``/dev/zero`` never ends, whatever ``stat`` says of its size.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

#: Largest JSON file the package will read (guards against hostile inputs).
MAX_JSON_BYTES = 64 * 1024 * 1024


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, then put it back
    os.umask(mask)
    return mask


def plain_open_mode(path: str | os.PathLike) -> int:
    """The permission bits ``open(path, "w")`` would leave: the old file's, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    On any failure (a full disk, say) the old file at ``path`` is left as it
    was and the temporary file is removed; the :class:`OSError` raised names
    ``path`` (``exc.filename``), not the temporary file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_bytes(target, b"hi").read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_open_mode(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, mode)
        _write_file(fd, tmp, data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        # ENOSPC and the like: name the file that could not be written, not the temporary one
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_file(fd: int, tmp: str, data: bytes) -> None:
    """Write ``data`` through ``fd`` (the temporary file ``tmp``), flush it to disk and close it."""
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (no NaN literals)."""
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_regular_bytes(
    path: str | os.PathLike, error: type[Exception], what: str, *, limit: int = MAX_JSON_BYTES
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else ``error`` with one readable line.

    A named pipe, device or socket (also behind a symlink) is refused without
    blocking; the read stops at ``limit + 1`` bytes whatever the file claims.

    Examples
    --------
    >>> read_regular_bytes("/dev/zero", ValueError, "data file")
    Traceback (most recent call last):
    ...
    ValueError: data file '/dev/zero' is not a regular file (a character device)
    """
    shown = repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{what} {shown} is not a regular file ({_file_kind(mode)})")
    with os.fdopen(fd, "rb", buffering=0) as handle:
        chunks, size = [], 0
        try:
            while size <= limit:
                chunk = handle.read(min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    if size > limit:
        raise error(f"{what} {shown} is larger than {limit} bytes, the most that is read")
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def read_json(path: str | os.PathLike, error: type[Exception], what: str) -> Any:
    """Read a JSON file, raising ``error`` with a readable message on any problem."""
    path = Path(path)
    data = read_regular_bytes(path, error, what)
    try:
        text = data.decode("utf-8")
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


#: Largest integer a saved run description may hold (seeds, step counts): an int64.
MAX_SAVED_INT = 2**63 - 1


def short_repr(value) -> str:
    """A ``repr`` cut to a few dozen characters (a hostile file's values stay out of messages)."""
    import reprlib

    return reprlib.repr(value)[:60]


def check_saved_int(value, *, name: str, error: type[Exception], low: int = 0) -> int:
    """``value`` if it is an integer (not a bool) in ``low .. MAX_SAVED_INT``, else ``error``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_SAVED_INT:
        raise error(f"{name} must be an integer from {low} to {MAX_SAVED_INT}, got {short_repr(value)}")
    return value


def check_origin(data: Any, *, error: type[Exception], what: str) -> dict:
    """Return ``data`` if it is a valid run description (a front's ``config``, a loss's ``metadata``).

    Only the fields evomal-sr reads back are checked, each for its type and
    range: ``task`` (an object: ``name``/``model``/``kind`` text, ``seed`` an
    integer, ``label_noise`` in [0, 1)), ``seed``, ``preset``, ``engine`` and the
    ``settings``/``overrides`` objects (numbers, text, booleans or null; integers
    at most an int64). Other fields are free-form.

    Examples
    --------
    >>> check_origin({"seed": 1, "task": {"name": "iris"}}, error=ValueError, what="config")["seed"]
    1
    >>> check_origin({"task": "iris"}, error=ValueError, what="config")
    Traceback (most recent call last):
    ...
    ValueError: config: 'task' must be an object describing the run's task, got 'iris'
    """
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {short_repr(data)}")
    task = data.get("task")
    if task is not None:
        if not isinstance(task, dict):
            raise error(f"{what}: 'task' must be an object describing the run's task, got {short_repr(task)}")
        _check_task_fields(task, error=error, what=what)
    if "seed" in data:
        check_saved_int(data["seed"], name=f"{what}: 'seed'", error=error)
    for key in ("preset", "engine"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise error(f"{what}: {key!r} must be text, got {short_repr(data[key])}")
    for key in ("settings", "overrides"):
        if data.get(key) is not None:
            _check_scalars(data[key], name=f"{what}: {key!r}", error=error)
    return data


def _check_task_fields(task: dict, *, error: type[Exception], what: str) -> None:
    for key in ("name", "model", "kind"):
        if task.get(key) is not None and not isinstance(task[key], str):
            raise error(f"{what}: task {key!r} must be text, got {short_repr(task[key])}")
    if "seed" in task:
        check_saved_int(task["seed"], name=f"{what}: task 'seed'", error=error)
    if "label_noise" in task:
        noise = task["label_noise"]
        if not is_finite_number(noise) or not 0.0 <= noise < 1.0:
            raise error(f"{what}: task 'label_noise' must be a number in [0, 1), got {short_repr(noise)}")


def _check_scalars(values: Any, *, name: str, error: type[Exception]) -> None:
    if not isinstance(values, dict):
        raise error(f"{name} must be an object, got {short_repr(values)}")
    for key, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool):
            check_saved_int(value, name=f"{name} {key!r}", error=error, low=-MAX_SAVED_INT)
        elif isinstance(value, float) and not math.isfinite(value):
            raise error(f"{name} {key!r} must be finite, got {short_repr(value)}")
        elif not isinstance(value, (bool, float, str, type(None))):
            raise error(f"{name} {key!r} must be a number, text, true/false or null, got {short_repr(value)}")


#: Largest CSV file the package will read.
MAX_CSV_BYTES = 1 << 30


def read_csv_text(path: str | os.PathLike, error: type[Exception]) -> str:
    """The text of a CSV file (UTF-8, a byte-order mark dropped), read as :func:`read_regular_bytes` does.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_bytes(b"\\xef\\xbb\\xbfa,b\\n1,2\\n")
    >>> read_csv_text(path, ValueError)
    'a,b\\n1,2\\n'
    """
    if not os.path.lexists(path):
        raise error(f"CSV file not found: {path}")
    return read_regular_bytes(path, error, "CSV file", limit=MAX_CSV_BYTES).decode("utf-8-sig")
