"""``evomal-sr evaluate``: meta-test a learned loss against known losses, each tuned and early-stopped.

Registered on the command group with ``cli.add_command(evaluate)``. Every user
mistake raises a subclass of :class:`~evomal_sr.errors.EvomalError`, which the
group prints as one ``Error: ...`` line with exit status 2.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from evomal_sr.cli.progress import meta_test_progress
from evomal_sr.errors import ConfigError, LossFileError

#: Files ``--out`` writes.
OUT_FILES = {"csv": "metatest.csv", "json": "metatest.json", "png": "curves.png", "md": "report.md"}


@click.command("evaluate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="DIR|LOSS.json")
@click.option(
    "--index",
    type=int,
    default=None,
    help="Which loss of the run's Pareto front (0 = simplest); default the loss the search returned "
    "(its final selection's winner, learned or known, where the run has a selection.json; else the most accurate).",
)
@click.option(
    "--dataset",
    default=None,
    help="Built-in dataset to train on; default the run's own (needed for a loss file without one).",
)
@click.option(
    "--model",
    default=None,
    help="Base model (linear, mlp, cnn, lenet5, allcnnc, vgg11, vgg16, resnet18); default the run's own.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Transfer to the data of this CSV file (with --target) [default: the run's own data].",
)
@click.option(
    "--npz",
    "npz_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Transfer to the arrays of this .npz file (X, y, optional X_test, y_test).",
)
@click.option("--target", default=None, help="Target column(s) of --csv [default: the run's, for its own file].")
@click.option(
    "--label-noise",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=None,
    help="Fraction of corrupted training labels; default the run's own (0 on another dataset).",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Number of seeds (model initialisation and minibatch order).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="SGD steps per model; default the preset's meta_test_steps.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="First seed; seeds are SEED, SEED+1, ..."
)
@click.option("--preset", default=None, help="Preset giving lr, batch size and steps; default the run's settings.")
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cpu or cuda.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for metatest.csv, metatest.json and curves.png.",
)
@click.option(
    "--baselines",
    default="standard",
    show_default=True,
    help="What to compare with: 'standard', 'zoo' (every known loss of the task kind) or a comma list "
    "of known losses, e.g. 'standard,gce,mae'.",
)
@click.option("--tune-lr", is_flag=True, help="Choose each method's SGD lr on validation from --lr-grid.")
@click.option(
    "--lr-grid",
    default=None,
    help="Comma list of learning rates for --tune-lr [default: the preset's lr x 0.3, 1, 3, 10, 30].",
)
@click.option(
    "--lr-extend",
    type=click.IntRange(min=0),
    default=None,
    help="With --tune-lr: where a method's best lr is its grid's largest or smallest, try one more beyond it, "
    "up to this many times [default: 4; 0 keeps the grid].",
)
@click.option(
    "--lr-fallback/--no-lr-fallback",
    default=None,
    help="With --tune-lr: a method whose final run diverged or collapsed (its training loss blew up) before its "
    "stopping step trains again at the next smaller lr of its grid [default: on].",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=1),
    default=None,
    help="Steps between validation evaluations (early stopping) [default: steps / 50].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch; 1 is often fastest for small models on a busy machine.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no header; only the table.")
def evaluate(
    source,
    index,
    dataset,
    model,
    label_noise,
    seeds,
    steps,
    seed,
    preset,
    device,
    out,
    baselines,
    tune_lr,
    lr_grid,
    lr_extend,
    lr_fallback,
    eval_every,
    threads,
    quiet,
    **data,
):
    """Meta-test a learned loss: train fresh models with it and with known losses.

    DIR is a search's output folder (with pareto.json) or LOSS.json a saved loss
    (learned, ML3 or TaylorGLO). Models train on training + validation rows and
    are scored on the test rows, over several seeds; every seed starts both
    losses from the same initialisation with the same minibatches. A loss can be
    transferred to another dataset or model of the same kind (classification or
    regression). With --tune-lr every method gets its own lr, chosen on the
    validation rows; every method is reported at its last step and early-stopped
    (at the best validation step of a training-rows-only run).

    \b
    Examples:
      evomal-sr evaluate runs/digits
      evomal-sr evaluate runs/digits --index 0 --seeds 10 --out runs/digits/metatest
      evomal-sr evaluate runs/digits --baselines zoo --tune-lr --seeds 5 --out runs/digits/fair
      evomal-sr evaluate runs/digits --baselines standard,gce,sce --steps 3000
      evomal-sr evaluate runs/digits --dataset wine --model linear
      evomal-sr evaluate loss.json --dataset iris --steps 2000 --threads 1
    """
    import torch

    from evomal_sr.evaluation.metatest import count_parameters, describe_loss, meta_test, resolve_loss
    from evomal_sr.evaluation.methods import resolve_methods

    if threads is not None:
        torch.set_num_threads(threads)
    loss, origin = _load_source(Path(source), index)
    task = _build_task(origin.get("task") or {}, dataset=dataset, model=model, label_noise=label_noise, **data)
    loss = resolve_loss(loss, task.kind)  # refuses a transfer across task kinds before any work
    settings = _settings(origin, preset)
    n_steps = settings.meta_test_steps if steps is None else steps
    options = {
        "baselines": _baseline_list(baselines),
        "tune_lr": tune_lr,
        "eval_every": eval_every,
        "lr_grid": _lr_grid(lr_grid, tune_lr),
    }
    if lr_extend is not None:
        if not tune_lr:
            raise ConfigError("--lr-extend needs --tune-lr")
        options["lr_extend"] = lr_extend
    if lr_fallback is not None:
        if not tune_lr:
            raise ConfigError("--lr-fallback/--no-lr-fallback needs --tune-lr")
        options["lr_fallback"] = lr_fallback
    if eval_every is not None and eval_every > n_steps:
        raise ConfigError(f"--eval-every ({eval_every}) must not exceed --steps ({n_steps})")
    resolve_methods(loss, task.kind, baselines=options["baselines"])  # an unknown baseline: refused before the header
    if not quiet:
        click.echo(f"loss:  {describe_loss(loss)} ({count_parameters(loss)} parameters)")
        click.echo(f"task:  {task!r}")
        lr_text = "tuned per method" if tune_lr else f"lr {settings.lr}"
        click.echo(
            f"train: {seeds} seeds x {n_steps} SGD steps, {lr_text}, batch {settings.batch_size}; selection "
            f"run on training rows, final run on train + validation rows; test on "
            f"{task.describe()['n_test']} rows"
        )
    bar = meta_test_progress(total=2 * n_steps, quiet=quiet)
    try:
        report = meta_test(
            loss,
            task,
            seeds=seeds,
            seed=seed,
            steps=n_steps,
            preset=settings,
            device=device,
            progress=bar.update,
            verbose=0,
            **options,
        )
    finally:
        bar.close()
    click.echo(report.table())
    if not quiet and report.comparison():
        click.echo(f"\n{report.comparison()}")
    if out is not None:
        _write_report(report, Path(out), log_y=task.kind == "regression", quiet=quiet)


def _write_report(report, folder: Path, *, log_y: bool, quiet: bool) -> None:
    """The meta-test's CSV, JSON, curves and Markdown in ``folder`` (:data:`OUT_FILES`)."""
    from evomal_sr.core.fileio import atomic_write_text

    report.to_csv(folder / OUT_FILES["csv"])
    report.to_json(folder / OUT_FILES["json"])
    report.plot_curves(folder / OUT_FILES["png"], log_y=log_y)
    atomic_write_text(folder / OUT_FILES["md"], report.to_markdown())
    if not quiet:
        click.echo(f"wrote {', '.join(str(folder / name) for name in OUT_FILES.values())}")


def _load_source(path: Path, index: int | None):
    """The loss to test and what is known of its origin (``task`` and ``settings`` dicts)."""
    from evomal_sr.core.fileio import read_json
    from evomal_sr.results.front import FRONT_FORMAT, ParetoFront

    if not path.exists():
        raise LossFileError(f"no such run folder or loss file: {str(path)!r}")
    if path.is_dir():
        if not (path / "pareto.json").exists():
            raise LossFileError(f"{str(path)!r} holds no pareto.json; is it a search's --out folder?")
        path = path / "pareto.json"
    data = read_json(path, LossFileError, "loss or Pareto-front file")
    if isinstance(data, dict) and data.get("format") == FRONT_FORMAT:
        front = ParetoFront.from_dict(data)
        selection = path.parent / "selection.json"
        if index is None and selection.exists():  # what the search returned: its final selection's winner
            from evomal_sr.evaluation.selection import returned_loss

            summary = read_json(selection, LossFileError, "final selection file")
            return returned_loss(front, summary), dict(front.config)
        return front.best_loss("accuracy" if index is None else index), dict(front.config)
    if index is not None:
        raise ConfigError("--index picks a loss of a run's Pareto front; a loss file holds a single loss")
    from evomal_sr.losses.io import load_loss

    loss = load_loss(path)
    return loss, dict(getattr(loss, "metadata", {}) or {})


def _build_task(origin: dict, *, dataset, model, label_noise, csv_path=None, npz_path=None, target=None):
    """The task to meta-test on: the run's own data (its built-in dataset, or the CSV / npz file it
    recorded, re-opened and checked), or the dataset / file the options name."""
    from evomal_sr.data.noise import recorded_options
    from evomal_sr.data.tasks import Task

    if sum(x is not None for x in (dataset, csv_path, npz_path)) > 1:
        raise ConfigError("give at most one of --dataset, --csv and --npz")
    if target is not None and csv_path is None:
        raise ConfigError("--target chooses the column of --csv")
    source = origin.get("source") if isinstance(origin.get("source"), dict) else None
    own = dataset is None and csv_path is None and npz_path is None
    if model is None:
        model = origin.get("model")
        if model == "custom":
            raise ConfigError("the run used a custom model that cannot be rebuilt here; pass --model NAME")
    # the run's own noise and imbalance options (noisy_splits, noise=..., ...) unless --label-noise redefines the noise
    noise = recorded_options(origin) if own and label_noise is None else {}
    if label_noise is None:
        label_noise = float(origin.get("label_noise", 0.0)) if own else 0.0
    split_seed = int(origin.get("seed", 0)) if own else 0
    options = {"seed": split_seed, "label_noise": label_noise, "model": model or "mlp", **noise}
    if own and source is not None:
        return _reopen(source, origin, options)
    if csv_path is not None:
        if target is None:
            raise ConfigError("--csv needs --target COLUMN naming the column to predict")
        return Task.from_csv(csv_path, target=target, **options)
    if npz_path is not None:
        return Task.from_npz(npz_path, **options)
    name = dataset or origin.get("name")
    if not name:
        raise ConfigError("the loss file does not say which dataset it was learned on; pass --dataset NAME")
    return Task.builtin(name, seed=split_seed, label_noise=label_noise, model=model, **noise)


def _reopen(source: dict, origin: dict, options: dict):
    """The run's own CSV / npz data, re-opened; an error if the file moved or changed (never a built-in)."""
    from evomal_sr.data.noise import recorded_options
    from evomal_sr.data.tasks import Task

    kind, path = source.get("type"), source.get("path")
    if kind not in ("csv", "npz") or not isinstance(path, str):
        raise ConfigError(f"the run's data source {source!r} cannot be re-opened; pass --dataset, --csv or --npz")
    if not Path(path).is_file():
        raise ConfigError(
            f"the run's data file {path!r} no longer exists (moved or deleted?); pass --csv PATH "
            "(with --target) or --npz PATH to evaluate on it where it is now"
        )
    if kind == "csv":
        features = source.get("features")
        task = Task.from_csv(
            path, target=str(source.get("target", "")).split(","), features=features, kind=source.get("kind"), **options
        )
    else:
        task = Task.from_npz(path, kind=origin.get("kind"), **options)
    same_noise = options["label_noise"] == float(origin.get("label_noise", 0.0)) and all(
        options.get(key) == value for key, value in recorded_options(origin).items()
    )  # noise is in the fingerprint
    if same_noise and origin.get("fingerprint") and task.describe()["fingerprint"] != origin["fingerprint"]:
        raise ConfigError(
            f"the run's data file {path!r} has changed since the search (its fingerprint differs); "
            "pass --csv/--npz explicitly to evaluate on the new contents"
        )
    return task


def _settings(origin: dict, preset):
    """The preset named by ``--preset``, else the run's saved settings, else ``quick``."""
    from evomal_sr.core.presets import PRESETS, Preset, resolve_preset

    if preset is not None:
        return resolve_preset(preset)
    saved = origin.get("settings")
    if isinstance(saved, dict):
        names = {f.name for f in dataclasses.fields(Preset)}
        try:
            return resolve_preset(Preset(), **{k: v for k, v in saved.items() if k in names})
        except (ConfigError, TypeError, ValueError, OverflowError) as exc:  # a hand-edited file's odd values
            raise LossFileError(f"the run's saved settings are invalid: {exc}") from None
    name = origin.get("preset")
    return resolve_preset(name if name in PRESETS else "quick")


def _baseline_list(text: str) -> list[str]:
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    if not names:
        raise ConfigError("--baselines is empty; give 'standard', 'zoo' or a comma list of known losses")
    return names


def _lr_grid(text, tune_lr: bool):
    if text is None:
        return None
    if not tune_lr:
        raise ConfigError("--lr-grid needs --tune-lr")
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--lr-grid must be a comma list of positive numbers, got {text!r}") from None
