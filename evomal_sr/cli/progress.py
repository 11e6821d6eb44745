"""Progress of a search or a meta-test: a bar on a terminal, log lines otherwise; the resume hint after Ctrl-C."""

from __future__ import annotations

import math
import os
import sys
import time

import click


class SearchProgress:
    """Progress over generations: a tqdm bar on a terminal, else one line per generation; nothing when quiet.

    A line reads ``generation 3/10  best so far 0.1234  evaluated 12  cache hits 3
    rejected 2  elapsed 12.3 s  ETA 28.7 s`` (nohup, CI and log files get them as they happen).
    """

    def __init__(self, total: int, *, quiet: bool, stream=None, selection: bool = False):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.total, self.quiet, self.selection = total, quiet, selection
        self.lines = not quiet and not is_terminal(self.stream)
        self.bar = tqdm(total=total, desc="generations", unit="gen", file=self.stream, disable=quiet or self.lines)
        self.start, self.first, self.best = time.perf_counter(), None, math.inf
        self.done = 0  # generations completed, a resumed run's earlier ones included

    def __call__(self, record):
        totals = record.totals
        self.best = min(self.best, record.best_fitness)
        self.done = record.generation + 1
        self.first = record.generation if self.first is None else self.first
        if self.lines:
            self._line(record)
        self.bar.set_postfix(
            best=f"{self.best:.4f}",
            cache=totals.get("exact_hits", 0) + totals.get("equivalent_hits", 0),
            rejected=totals.get("rejected", 0),
        )
        self.bar.update(record.generation + 1 - self.bar.n)  # a resumed run starts part-way
        if self.selection and self.done == self.total and not self.quiet:  # what the silent minute after is
            self.bar.close()
            click.echo(
                "final selection: re-scoring the front's best losses and the known losses with the meta-test's "
                "protocol (about as long as the search; --final-selection none skips it)",
                file=self.stream,
            )

    def _line(self, record):
        elapsed = time.perf_counter() - self.start
        per_generation = elapsed / (self.done - self.first)
        eta = per_generation * (self.total - self.done)
        click.echo(
            f"generation {self.done}/{self.total}  best so far {self.best:.4f}  "
            f"evaluated {record.evaluations}  cache hits {record.exact_hits + record.equivalent_hits}  "
            f"rejected {record.rejected}  elapsed {elapsed:.1f} s  ETA {eta:.1f} s",
            file=self.stream,
        )
        self.stream.flush()

    def close(self):
        self.bar.close()


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def resume_command(out_dir) -> str:
    """The command line that continues this run: its own options (those not at their default), plus --resume."""
    import shlex

    from click.core import ParameterSource

    ctx = click.get_current_context()
    words = ["evomal-sr", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        given = ctx.get_parameter_source(param.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if param.name in ("resume", "force", "quiet", "out_dir") or not given or value is None or value is False:
            continue
        flag = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            words.append(flag)
        else:
            for item in value if isinstance(value, (list, tuple)) else [value]:
                words.extend([flag, str(item)])
    words.extend(["--out", str(out_dir), "--resume"])
    return shlex.join(words)


def report_interrupted(progress: SearchProgress, out_dir) -> None:
    """Ctrl-C: say how far the run got and how to continue it; exit status 130."""
    progress.close()
    if progress.done:
        click.echo(
            f"\nInterrupted after generation {progress.done} of {progress.total}; continue with:\n"
            f"  {resume_command(out_dir)}",
            err=True,
        )
    elif os.path.isfile(os.path.join(out_dir, "checkpoint.json")):  # a resumed run stopped again
        click.echo(f"\nInterrupted; continue with:\n  {resume_command(out_dir)}", err=True)
    else:
        click.echo("\nInterrupted before the first generation finished; nothing was saved to resume.", err=True)
    sys.exit(130)


def meta_test_progress(*, total: int, quiet: bool):
    """A tqdm bar on a terminal; otherwise a line at each quarter of each of the meta-test's two runs."""
    from tqdm.auto import tqdm

    if quiet or sys.stderr.isatty():
        return tqdm(total=total, desc="meta-test", unit="step", leave=False, file=sys.stderr, disable=quiet)
    return MetaTestLines(total)


class MetaTestLines:
    """Progress for logs: ``meta-test: selection run 25% (250/1000 steps), 3.1 s``."""

    def __init__(self, total: int):
        self.total, self.done, self._clock, self._start = total, 0, time.perf_counter, time.perf_counter()
        self._next = max(1, total // 8)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self._next or self.done == self.total:
            half = self.total // 2
            phase, part = ("selection run", self.done) if self.done <= half else ("final run", self.done - half)
            click.echo(
                f"meta-test: {phase} {100 * part // max(half, 1)}% ({part}/{half} steps), "
                f"{self._clock() - self._start:.1f} s",
                err=True,
            )
            self._next += max(1, self.total // 8)

    def close(self) -> None:
        pass
