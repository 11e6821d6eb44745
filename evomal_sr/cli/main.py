"""The ``evomal-sr`` command line.

Every error a user can cause ends the command with exit status 2 and one
``Error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
import time

import click

from evomal_sr._version import __version__
from evomal_sr.errors import ConfigError, EvomalError, LossFileError


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
        except OSError as exc:  # an unwritable --out or -o, a full disk: the user's to fix, not a traceback
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

def _load_task(dataset, csv_path, target, kind, model, label_noise, seed):
    from evomal_sr.data.tasks import Task

    if (dataset is None) == (csv_path is None):
        raise ConfigError("give exactly one of --dataset NAME or --csv PATH (with --target COLUMN)")
    if csv_path is not None:
        if target is None:
            raise ConfigError("--csv needs --target COLUMN naming the column to predict")
        return Task.from_csv(csv_path, target=target, kind=kind, seed=seed, label_noise=label_noise,
                             model=model or "mlp")
    return Task.builtin(dataset, seed=seed, label_noise=label_noise, model=model)


class _Progress:
    """A tqdm bar over generations; silent when quiet or not attached to a terminal."""

    def __init__(self, total: int, *, quiet: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="generations", unit="gen", file=sys.stderr,
                        disable=quiet or not sys.stderr.isatty())

    def __call__(self, record):
        totals = record.totals
        self.bar.set_postfix(best=f"{record.best_fitness:.4f}",
                             cache=totals.get("exact_hits", 0) + totals.get("equivalent_hits", 0),
                             rejected=totals.get("rejected", 0))
        self.bar.update(record.generation + 1 - self.bar.n)  # a resumed run starts part-way

    def close(self):
        self.bar.close()


@cli.command()
@click.option("--dataset", help="Built-in dataset: digits, breast_cancer, wine, iris, mnist1d, diabetes, "
              "friedman1, sinusoid.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Your own data as a CSV file.")
@click.option("--target", help="Column of --csv to predict.")
@click.option("--kind", type=click.Choice(["classification", "regression"]), help="Task kind for --csv "
              "(inferred when unambiguous).")
@click.option("--model", help="linear, mlp or cnn (default: the dataset's).")
@click.option("--label-noise", type=float, default=0.0, show_default=True,
              help="Fraction of training labels to corrupt.")
@click.option("--engine", default="native", show_default=True, help="native (DEAP) or pysr (needs Julia).")
@click.option("--preset", default="quick", show_default=True, help="quick, paper or tiny.")
@click.option("--population", type=int, help="Override the preset's population size.")
@click.option("--generations", type=int, help="Override the preset's number of generations.")
@click.option("--meta-iterations", type=int, help="Override the local-search iterations.")
@click.option("--train-steps", type=int, help="Override the partial-training steps of the fitness.")
@click.option("--no-local-search", is_flag=True, help="Do not learn edge weights (the GP-LFL method).")
@click.option("--deterministic", is_flag=True, help="PySR engine: serial, reproducible search.")
@click.option("--threads", type=int, help="PySR engine: Julia threads [default: PySR's choice].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cpu or cuda.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: runs/NAME].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def search(dataset, csv_path, target, kind, model, label_noise, engine, preset, population, generations,
           meta_iterations, train_steps, no_local_search, deterministic, threads, seed, device, out_dir, resume,
           quiet):
    """Discover learned losses for a dataset; writes the Pareto front to --out.

    \b
    Writes DIR/pareto.csv (Complexity,Loss,Equation), DIR/pareto.json,
    DIR/pareto.png, DIR/history.csv and DIR/checkpoint.json.

    \b
    Examples:
      evomal-sr search --dataset digits --preset quick --out runs/digits
      evomal-sr search --dataset digits --label-noise 0.4 --generations 10 --out runs/noisy
      evomal-sr search --csv data.csv --target label --out runs/mine
      evomal-sr search --dataset digits --out runs/digits --resume
    """
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.search.estimator import LossSearch

    overrides = {"population": population, "generations": generations, "meta_iterations": meta_iterations,
                 "train_steps": train_steps}
    settings = resolve_preset(preset, **overrides)  # validate before loading data
    if engine == "pysr":  # PySR must start Julia before torch is imported
        from evomal_sr.engines.pysr import PySREngine, import_pysr

        PySREngine.check_available()
        import_pysr(threads)
    task = _load_task(dataset, csv_path, target, kind, model, label_noise, seed)
    out_dir = out_dir or f"runs/{task.name}"
    progress = _Progress(settings.generations, quiet=quiet)
    tick = time.perf_counter()
    try:
        fitted = LossSearch(engine=engine, preset=preset, seed=seed, device=device,
                            local_search=not no_local_search, out_dir=out_dir, resume=resume,
                            engine_options={"deterministic": deterministic, "threads": threads}, on_generation=progress,
                            **overrides).fit(task)
    finally:
        progress.close()
    front = fitted.pareto_front_
    click.echo(front.table())
    click.echo(f"\n{len(front)} losses on the front; {time.perf_counter() - tick:.1f} s; results in {out_dir}/")


# -- reading results ------------------------------------------------------------------

@cli.command()
@click.argument("run_dir", type=click.Path())
def front(run_dir):
    """Print the Pareto front of a finished run.

    \b
    Examples:
      evomal-sr front runs/digits
    """
    from evomal_sr.results.front import load_front

    click.echo(load_front(run_dir).table())


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--index", type=int, default=None, help="Entry of the front [default: the most accurate].")
@click.option("--format", "fmt", type=click.Choice(["json", "torch", "sympy", "latex"]), default="json",
              show_default=True)
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
    from evomal_sr.results.front import load_front

    loaded = load_front(run_dir)
    loss = loaded.best_loss("accuracy" if index is None else index)
    text = export_loss(loss, fmt)
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

    from evomal_sr.results.front import HallOfFame, load_front
    from evomal_sr.results.rundir import RunDir

    rundir = RunDir(Path(run_dir).parent if Path(run_dir).is_file() else run_dir)  # RUN_DIR/pareto.json works too
    loaded = load_front(run_dir)
    others = None
    if rundir.hall_of_fame_json.exists():
        from evomal_sr.core.fileio import read_json

        # from_list refuses a file that is not a list of entries (LossFileError, not a traceback)
        others = HallOfFame.from_list(read_json(rundir.hall_of_fame_json, LossFileError,
                                                "hall-of-fame file")).entries()
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
        click.echo(f"engine     {name}: {'ok' if ok else 'unavailable'} - {message}")


def _register_commands():
    from evomal_sr.cli.evaluate import evaluate

    cli.add_command(evaluate)


_register_commands()


def main():
    """Console-script entry point."""
    # OpenMP threads that spin while waiting make the many tiny ops of a search
    # up to 10x slower when another process shares the cores; must precede torch.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cli(prog_name="evomal-sr")
