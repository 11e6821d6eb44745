"""A lock file that keeps two searches out of one run folder.

The lock is created with ``O_EXCL`` and records the holder's process id, host,
process start time, command line (``argv``) and working folder (``cwd``; these
two tell whether a killed run was started by the same command). A lock whose holder is gone (a killed run) is stale:
on the same host a process that no longer exists, or one with the same id but
a different start time (the id was reused), does not keep the folder locked.
A lock from another host cannot be checked and is respected; the message says
which file to delete if that run is known to be over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from evomal_sr.errors import ConfigError

#: A lock file that cannot be read is taken as stale once it is this old (seconds).
UNREADABLE_GRACE = 10.0


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``), or ``None`` where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError):
        return False
    return True


class RunLock:
    """Hold ``path`` as a lock file for the duration of a ``with`` block.

    Raises
    ------
    ConfigError
        If another live search holds the lock.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> lock_path = pathlib.Path(tempfile.mkdtemp()) / ".evomal-sr.lock"
    >>> with RunLock(lock_path):
    ...     lock_path.exists()
    True
    >>> lock_path.exists()
    False
    """

    def __init__(self, path):
        self.path = Path(path)
        self._token: dict | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _me(self) -> dict:
        pid = os.getpid()
        return {
            "pid": pid,
            "host": socket.gethostname(),
            "start": _process_start(pid),
            "since": time.time(),
            "argv": [str(a) for a in sys.argv],
            "cwd": os.getcwd(),
        }

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = self._me()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if self._is_stale(holder):
                    self.path.unlink(missing_ok=True)
                    continue
                raise ConfigError(self._held_message(holder)) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(token, handle)
            self._token = token
            return
        raise ConfigError(f"could not take the lock {str(self.path)!r}; is another search starting there?")

    def release(self) -> None:
        """Remove the lock if it is still this holder's."""
        if self._token is None:
            return
        if self._holder() == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def stale_holder(self) -> dict | None:
        """The record of a lock left by a killed run (its holder is gone), or ``None``.

        ``None`` also when there is no lock, its holder is alive (or on another
        host), or the lock cannot be read.
        """
        if not self.path.exists():
            return None
        holder = self._holder()
        return holder if holder is not None and self._is_stale(holder) else None

    def live_holder_message(self) -> str | None:
        """Why the folder is busy (the message :meth:`acquire` would raise), or ``None`` if it is not."""
        if not self.path.exists():
            return None
        holder = self._holder()
        return None if self._is_stale(holder) else self._held_message(holder)

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _is_stale(self, holder: dict | None) -> bool:
        if holder is None or not isinstance(holder.get("pid"), int):
            try:
                return time.time() - self.path.stat().st_mtime > UNREADABLE_GRACE
            except OSError:
                return True  # gone in the meantime
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder["pid"]
        if not _alive(pid):
            return True
        start = _process_start(pid)
        return start is not None and holder.get("start") is not None and start != holder["start"]

    def _held_message(self, holder: dict | None) -> str:
        folder = str(self.path.parent)
        who = f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        return (
            f"another search ({who}) is writing to {folder!r}; wait for it to finish or choose another "
            f"--out (if that run is certainly over, delete {str(self.path)!r})"
        )
