"""``search --resume`` of a run killed before its first checkpoint, and a write failure (a full disk) mid-search.

* A run killed before its first checkpoint leaves only its lock (and at most
  the ``history.csv`` / partial ``pareto.json`` written just before that
  checkpoint). ``--resume`` with the *same command* starts it from the
  beginning and says so: nothing was lost. Another command, an empty folder or
  one without such a lock is still refused (by the run folder's own check).
* A file that cannot be written (``ENOSPC``) ends the search with one
  ``Error:`` line naming the file and saying whether ``--resume`` can continue:
  every file is written atomically, so the last checkpoint is intact.
"""

from __future__ import annotations

import errno
import os

import click

from evomal_sr.cli.messages import os_error_text
from evomal_sr.errors import ConfigError

#: Options of ``search`` that do not change what a run computes (where and how verbosely it runs).
IGNORED_OPTIONS = frozenset({"resume", "force", "quiet", "out_dir", "workers", "scheduler", "chunk_size"})
#: Options holding a file path, compared after resolving them against each run's working folder.
PATH_OPTIONS = frozenset({"csv_path", "npz_path"})


def resume_or_restart(out_dir) -> tuple[bool, bool]:
    """``(resume, force)`` for ``search --resume --out out_dir``.

    ``(True, False)`` unless the folder holds no checkpoint but the lock of a
    run of this same command killed before its first checkpoint: then
    ``(False, force)``, with a note on stderr, ``force`` set when that run left
    its first generation's ``history.csv`` / ``pareto.json`` (they are replaced).

    Raises
    ------
    ConfigError
        When that killed run was started by a different command (the options
        that differ are named).
    """
    from evomal_sr.results.rundir import RunDir

    rundir = RunDir(out_dir)
    if rundir.checkpoint.is_file() or rundir.lock().live_holder_message() is not None:
        return True, False
    killed = rundir.killed_run()
    if killed is None or not rundir.only_first_generation_files():
        return True, False  # the search refuses: nothing to resume
    difference = command_difference(killed)
    if difference is not None:
        way = "with --force instead of --resume" if rundir.has_run() else "without --resume"
        raise ConfigError(
            f"nothing to resume in {str(out_dir)!r}: it holds only the lock of a run killed before its "
            f"first checkpoint, and {difference}; start a new run there {way}"
        )
    click.echo(
        f"Note: the run in {str(out_dir)!r} (process {killed.get('pid')}) was stopped before its first "
        "checkpoint, so nothing was lost; starting it from the beginning.",
        err=True,
    )
    return False, rundir.has_run()


def command_difference(killed: dict) -> str | None:
    """``None`` if the killed run's recorded command is this ``search`` command; else how it differs."""
    argv, cwd = killed.get("argv"), killed.get("cwd")
    if (
        not isinstance(argv, list)
        or len(argv) < 2
        or not all(isinstance(a, str) for a in argv)
        or argv[1] != "search"
        or not isinstance(cwd, str)
    ):
        return "it was not started by `evomal-sr search`"
    ctx = click.get_current_context()
    try:
        before = ctx.command.make_context("search", list(argv[2:]), resilient_parsing=True)
    except (click.ClickException, click.exceptions.Exit):
        return "its command line cannot be read"
    flags = []
    for param in ctx.command.params:
        if param.name in IGNORED_OPTIONS:
            continue
        then, now = before.params.get(param.name), ctx.params.get(param.name)
        if param.name in PATH_OPTIONS:
            then = None if then is None else os.path.normpath(os.path.join(cwd, then))
            now = None if now is None else os.path.abspath(now)
        if then != now:
            flags.append(max(param.opts, key=len))
    return f"it was started with other options (differing in {', '.join(flags)})" if flags else None


def write_failure_message(exc: OSError, out_dir) -> str:
    """The one ``Error:`` line for a file that could not be written during a search: which, and how to go on."""
    from evomal_sr.cli.progress import resume_command
    from evomal_sr.results.rundir import RunDir

    rundir = RunDir(out_dir)
    fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"
    done = checkpoint_progress(rundir.checkpoint)
    if done is not None:
        return (
            f"{os_error_text(exc)}; the last checkpoint ({done}) is intact: {fix}, then continue with: "
            f"{resume_command(out_dir)}"
        )
    if rundir.has_run():
        return (
            f"{os_error_text(exc)}; no checkpoint was written, so --resume cannot continue this run: {fix}, "
            "then start it again with --force"
        )
    return f"{os_error_text(exc)}; nothing was saved: {fix}, then run the command again"


def checkpoint_progress(path) -> str | None:
    """``"after generation 3 of 10"`` for a readable checkpoint at ``path``, else ``None``."""
    from evomal_sr.core.fileio import read_json
    from evomal_sr.errors import CheckpointError

    if not os.path.isfile(path):
        return None
    try:
        data = read_json(path, CheckpointError, "checkpoint")
        done, total = data["state"]["generation"], data["signature"]["settings"]["generations"]
    except (CheckpointError, KeyError, TypeError):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (done, total)):
        return None
    return f"after generation {done} of {total}"
