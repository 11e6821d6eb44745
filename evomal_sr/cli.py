"""The ``evomal-sr`` command line.

Every error a user can cause ends the command with exit status 2 and one
``Error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import click

from ._version import __version__
from .errors import EvomalError


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
            click.echo(f"Error: {exc}", err=True)
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


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("expression")
def show(expression):
    """Print an expression's canonical form, complexity, depth, SymPy form and LaTeX.

    \b
    Examples:
      evomal-sr show "aq(y, fx) + log(fx)"
      evomal-sr show "-(y * log(fx))"
    """
    from .expression import Expression

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


def main():
    """Console-script entry point."""
    cli(prog_name="evomal-sr")
