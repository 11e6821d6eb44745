"""The ``evomal-sr`` command line.

Every error a user can cause ends the command with exit status 2 and one
``Error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from evomal_sr._version import __version__
from evomal_sr.cli.messages import class_names_line, cli_words, os_error_text
from evomal_sr.core.memory import keep_freed_memory
from evomal_sr.errors import EvomalError, LossFileError


class _Group(click.Group):
    """A Click group that turns user errors into one line and exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except EvomalError as exc:
            click.echo(f"Error: {cli_words(str(exc))}", err=True)
            sys.exit(2)
        except OSError as exc:  # an unwritable --out or -o, a full disk: the user's to fix, not a traceback
            click.echo(f"Error: {os_error_text(exc)}", err=True)
            sys.exit(2)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evomal-sr")
def cli():
    """Discover symbolic loss functions by genetic programming and meta-learning.

    \b
    Examples:
      evomal-sr show "-(y * log(fx))"
      evomal-sr search --dataset digits --preset quick --out runs/digits
      evomal-sr front runs/digits
    """


class _ExpressionCommand(click.Command):
    """A command whose one argument may start with ``-`` (``show "-(y * log(fx))"``).

    Click would read ``-(tanh(fx) * y)`` as a cluster of short options, ``-h``
    among them; an argument that starts with ``-`` and is not ``-h``,
    ``--help`` or ``--`` is therefore passed after an implicit ``--``.
    """

    def parse_args(self, ctx, args):
        args = list(args)
        if args and args[0].startswith("-") and args[0] not in ("-h", "--help", "--"):
            args.insert(0, "--")
        return super().parse_args(ctx, args)


@cli.command(cls=_ExpressionCommand)
@click.argument("expression")
def show(expression):
    """Print an expression's canonical form, complexity, depth, SymPy form and LaTeX.

    \b
    Examples:
      evomal-sr show "aq(y, fx) + log(fx)"
      evomal-sr show "-(y * log(fx))"
      evomal-sr show -- "-tanh((y - fx))"
    """
    from evomal_sr.grammar.expression import Expression

    expr = Expression.parse(expression)
    rows = [
        ("expression", str(expr)),
        ("complexity", expr.complexity),
        ("depth", expr.depth),
        ("edges", expr.size - 1),
        ("sympy", expr.to_sympy(simplify=True)),
        ("latex", expr.to_latex()),
    ]
    for key, value in rows:
        click.echo(f"{key:<11} {value}")


# -- search ---------------------------------------------------------------------------


_INDEX_HELP = (
    "Entry of the front: 0 is the simplest, -1 the most complex (Python indexing) [default: the most accurate]."
)


def _load_front_noting_partial(run_dir):
    """The run's front; a note on stderr when it is the partial front of an unfinished run."""
    from evomal_sr.results.front import load_front

    loaded = load_front(run_dir)
    if loaded.partial:
        done, total = loaded.partial.get("generation"), loaded.partial.get("generations")
        click.echo(
            f"Note: partial front: the run stopped after generation {done} of {total}; continue it with "
            "`evomal-sr search ... --resume` (same options).",
            err=True,
        )
    return loaded


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--index", type=int, default=None, help="Show this entry in full (exact weights). " + _INDEX_HELP)
def front(run_dir, index):
    """Print the Pareto front of a run (the # column is the --index of each loss).

    \b
    Examples:
      evomal-sr front runs/digits
      evomal-sr front runs/digits --index -1
    """
    loaded = _load_front_noting_partial(run_dir)
    classes = class_names_line(loaded.config)
    if classes:
        click.echo(classes)
    if index is None:
        click.echo(loaded.table())
        return
    position = loaded.select_index(index)
    entry = loaded[position]
    for key, value in (
        ("index", position),
        ("complexity", entry.complexity),
        ("val. error", entry.fitness),
        ("score", loaded.scores()[position]),
        ("expression", entry.expression),
        ("weights", ", ".join(repr(w) for w in entry.weights)),
        ("equation", entry.equation(digits=None)),
    ):
        click.echo(f"{key:<11} {value}")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--index", type=int, default=None, help=_INDEX_HELP)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "torch", "sympy", "latex"]), default="json", show_default=True
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
def export(run_dir, index, fmt, output):
    """Export one learned loss: JSON, a standalone torch module, SymPy or LaTeX.

    \b
    Examples:
      evomal-sr export runs/digits --index 0 --format torch -o my_loss.py
      evomal-sr export runs/digits --format latex
      evomal-sr export runs/digits --index 2 --format json -o loss.json
    """
    from evomal_sr.core.fileio import atomic_write_text
    from evomal_sr.results.export import export_loss

    loaded = _load_front_noting_partial(run_dir)
    loss = loaded.best_loss("accuracy" if index is None else index)
    text = export_loss(loss, fmt, filename=None if output is None else os.path.basename(output))
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        click.echo(f"wrote {output}")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Image file [default: RUN_DIR/pareto.png].")
def plot(run_dir, output):
    """Plot validation error against complexity for a run (PNG, SVG or PDF).

    \b
    Examples:
      evomal-sr plot runs/digits
      evomal-sr plot runs/digits -o front.svg
    """
    from pathlib import Path

    from evomal_sr.results.hall_of_fame import HallOfFame
    from evomal_sr.results.rundir import RunDir

    rundir = RunDir(Path(run_dir).parent if Path(run_dir).is_file() else run_dir)  # RUN_DIR/pareto.json works too
    loaded = _load_front_noting_partial(run_dir)
    others = None
    if rundir.hall_of_fame_json.exists():
        from evomal_sr.core.fileio import read_json

        # from_list refuses a file that is not a list of entries (LossFileError, not a traceback)
        others = HallOfFame.from_list(read_json(rundir.hall_of_fame_json, LossFileError, "hall-of-fame file")).entries()
    path = loaded.plot(Path(output) if output else rundir.pareto_png, hall_of_fame=others)
    click.echo(f"wrote {path}")


@cli.command()
def doctor():
    """Report versions, the torch device, and which search engines can run.

    \b
    Examples:
      evomal-sr doctor
    """
    import platform

    import torch

    from evomal_sr.engines import ENGINES, get_engine
    from evomal_sr.engines.pysr.runtime import describe_pysr  # reads PySR's source, starts no Julia

    click.echo(f"evomal-sr  {__version__}")
    click.echo(f"python     {platform.python_version()} ({platform.machine()})")
    click.echo(f"torch      {torch.__version__}; threads {torch.get_num_threads()}")
    cuda = f"available: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "not available"
    click.echo(f"cuda       {cuda}")
    for name in ENGINES:
        try:
            ok, message = get_engine(name).status()
        except ImportError as exc:  # an engine module that cannot even be imported
            ok, message = False, str(exc)
        detail = f" [pysr {describe_pysr()}]" if name == "pysr" else ""  # version, GIL release
        click.echo(f"engine     {name}: {'ok' if ok else 'unavailable'} - {message}{detail}")


def _register_commands():
    from evomal_sr.cli.evaluate import evaluate
    from evomal_sr.cli.search import search

    cli.add_command(search)
    cli.add_command(evaluate)


_register_commands()


def main():
    """Console-script entry point."""
    # OpenMP threads that spin while waiting make the many tiny ops of a search
    # much slower when another process shares the cores (benchmarks/PERFORMANCE.md);
    # must precede torch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # freed tensors' memory stays in the process instead of being faulted in again at every step
    # (evomal_sr.core.memory: 1.77 M minor page faults of a paper search become about 95 k)
    keep_freed_memory()
    cli(prog_name="evomal-sr")
