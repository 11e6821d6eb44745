"""``evomal-sr search``: run a loss search on a built-in dataset or the user's data."""

from __future__ import annotations

import sys
import time

import click

from evomal_sr.cli.progress import SearchProgress, report_interrupted
from evomal_sr.cli.runfolder import resume_or_restart, write_failure_message
from evomal_sr.core.presets import CHOICES
from evomal_sr.core.validation import PROGRAMS, check_chunk_size
from evomal_sr.errors import ConfigError

#: the selection_prior settings that name a known loss (the others name a rule: none, robust, robust-...)
_PRIOR_LOSSES = [c for c in CHOICES["selection_prior"] if c != "none" and not c.startswith("robust")]


def _load_task(dataset, csv_path, target, kind, model, label_noise, seed, npz_path=None, features=None, drop=None):
    from evomal_sr.data.tasks import Task

    if sum(x is not None for x in (dataset, csv_path, npz_path)) != 1:
        raise ConfigError("give exactly one of --dataset NAME, --csv PATH (with --target COLUMN) or --npz PATH")
    if csv_path is None and (target or features or drop):
        raise ConfigError("--target, --features and --drop choose columns of --csv")
    if csv_path is not None:
        if target is None:
            raise ConfigError("--csv needs --target COLUMN naming the column to predict")
        return Task.from_csv(
            csv_path,
            target=target,
            kind=kind,
            seed=seed,
            label_noise=label_noise,
            model=model or "mlp",
            features=features,
            drop=drop,
        )
    if npz_path is not None:
        return Task.from_npz(npz_path, kind=kind, seed=seed, label_noise=label_noise, model=model or "mlp")
    return Task.builtin(dataset, seed=seed, label_noise=label_noise, model=model)


def _executor_setting(workers, scheduler):
    """The ``executor`` of LossSearch for --workers / --scheduler, checked before any data is loaded."""
    from evomal_sr.parallel import require_dask

    if workers is not None and scheduler is not None:
        raise ConfigError("give --workers N (a local Dask cluster) or --scheduler ADDRESS (an existing one), not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}; leave it out to run in this process")
    if workers is None and scheduler is None:
        return None
    if scheduler is not None and ":" not in scheduler:
        raise ConfigError(f"--scheduler needs a scheduler address such as tcp://10.0.0.5:8786, got {scheduler!r}")
    require_dask()
    return workers if workers is not None else scheduler


@click.command("search", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dataset", help="Built-in dataset: digits, breast_cancer, wine, iris, mnist1d, diabetes, friedman1, sinusoid."
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Your own data as a CSV file (delimiter sniffed)."
)
@click.option(
    "--npz",
    "npz_path",
    type=click.Path(dir_okay=False),
    help="Your own arrays as an .npz file: X, y (optional X_test, y_test); input_shape from X.",
)
@click.option("--target", help="Column(s) of --csv to predict; several (y1,y2) mean multi-output regression.")
@click.option("--features", help="Feature columns of --csv, comma-separated [default: all but the target(s)].")
@click.option("--drop", help="Columns of --csv that are not features, e.g. an id column.")
@click.option(
    "--kind",
    type=click.Choice(["classification", "regression"]),
    help="Task kind for --csv/--npz (inferred when unambiguous).",
)
@click.option(
    "--model",
    help="linear, mlp, cnn, or the paper's lenet5, allcnnc, vgg11, vgg16, resnet18 "
    "(image data; for a GPU) [default: the dataset's].",
)
@click.option(
    "--label-noise", type=float, default=0.0, show_default=True, help="Fraction of training labels to corrupt."
)
@click.option("--engine", default="native", show_default=True, help="native (DEAP) or pysr (needs Julia).")
@click.option(
    "--preset",
    default="standard",
    show_default=True,
    help="standard (recommended: each candidate from two initialisations, at its best lr and best step "
    "along 500; a few minutes with its final selection), quick (the paper's fitness, under a minute), "
    "paper (the paper's budget) or tiny.",
)
@click.option("--population", type=int, help="Override the preset's population size.")
@click.option("--generations", type=int, help="Override the preset's number of generations.")
@click.option("--meta-iterations", type=int, help="Override the local-search iterations.")
@click.option(
    "--local-search-scale",
    type=click.Choice(CHOICES["local_search_scale"]),
    help="fixed: keep each loss's edge weights at their initial norm in local search, so it reshapes "
    "the loss without growing it [default: the preset's].",
)
@click.option("--train-steps", type=int, help="Override the partial-training steps of the fitness.")
@click.option(
    "--fitness-eval-every",
    type=int,
    help="Score each candidate at its best validation step, checked "
    "every N training steps (0: the last step, the paper's) [default: the preset's].",
)
@click.option(
    "--fitness-seeds",
    type=int,
    help="Initialisations each candidate trains from; its fitness is their mean [default: the preset's].",
)
@click.option(
    "--fitness-lr-grid",
    type=int,
    help="Learning rates each candidate is scored at, lr x ratio**j [default: the preset's].",
)
@click.option("--fitness-lr-ratio", type=float, help="Ratio of that lr grid [default: the preset's].")
@click.option(
    "--operators",
    type=click.Choice(CHOICES["operators"]),
    help="Operator set: paper (EvoMAL's), extended (adds exp) or robust (adds exp, pow, huber) "
    "[default: the preset's].",
)
@click.option(
    "--initial-fill",
    type=click.Choice(CHOICES["initial_fill"]),
    help="variants: fill the first population after the known losses with crossovers and mutations of them, "
    "not random trees (native engine) [default: the preset's].",
)
@click.option(
    "--loss-scaling",
    type=click.Choice(CHOICES["loss_scaling"]),
    help="Normalise each candidate's gradient norm on a probe batch [default: the preset's].",
)
@click.option(
    "--final-selection",
    type=click.Choice(CHOICES["final_selection"]),
    help="After the search, re-score the front's best losses and the known losses on folds of the "
    "training + validation rows and return the winner (fair), or not (none) [default: the preset's].",
)
@click.option(
    "--selection-margin",
    type=float,
    help="Paired standard errors by which a learned loss must beat the best known one on the final "
    "selection's folds (and a known loss MAE) [default: the preset's].",
)
@click.option(
    "--selection-scoring",
    type=click.Choice(CHOICES["selection_scoring"]),
    help="Which rows choose each fold's lr and stopping step and score it in the final selection; auto: "
    "folds of the validation rows where the training rows' class balance differs from theirs, else the "
    "validation rows; auto-regression: auto, and folds of the validation rows on regression tasks too "
    "[default: the preset's].",
)
@click.option(
    "--selection-prior",
    type=click.Choice(CHOICES["selection_prior"]),
    help="The known loss returned unless another beats it on the final selection's folds: robust-classes (MAE; "
    "SCE above five classes; adaptive-huber on regression), robust-shift (robust-classes, but label smoothing "
    "where the training rows' class balance differs from the validation rows'), robust (MAE; adaptive-huber on "
    f"regression), a known loss ({', '.join(_PRIOR_LOSSES)}), or none [default: the preset's].",
)
@click.option(
    "--selection-metric",
    type=click.Choice(CHOICES["selection_metric"]),
    help="What chooses each fold's lr and stopping step and scores it in the final selection on a regression "
    "task: mae (a heavy-tailed validation target cannot decide a fold), huber, or task (the meta-test's MSE); "
    "classification always uses the error rate [default: the preset's].",
)
@click.option(
    "--selection-uncertainty",
    type=click.Choice(CHOICES["selection_uncertainty"]),
    help="What the final selection's paired standard errors hold: the spread over its folds, or that and "
    "the sampling error of the rows it scores on [default: the preset's].",
)
@click.option(
    "--selection-lr-extend",
    type=click.IntRange(min=0),
    help="How many steps each fold's lr grid in the final selection may grow past an edge where a loss's best "
    "lr lies (0: the grid as given) [default: the preset's].",
)
@click.option("--no-local-search", is_flag=True, help="Do not learn edge weights (the GP-LFL method).")
@click.option("--deterministic", is_flag=True, help="PySR engine: serial, reproducible search.")
@click.option("--threads", type=int, help="PySR engine: Julia threads [default: PySR's choice].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device, e.g. cpu or cuda.")
@click.option(
    "--cuda-graph",
    is_flag=True,
    help="On CUDA, replay each batch's rejection, local-search and training steps from "
    "CUDA graphs (same results, fewer kernel launches; not yet measured on a GPU by this project).",
)
@click.option(
    "--program",
    type=click.Choice(PROGRAMS),
    default="per-tree",
    show_default=True,
    help="How each batch's losses are computed: one compiled tree per candidate, or the population "
    "interpreter (tensor: the same candidates and fitnesses, learned weights equal to float32 round-off; "
    "faster on CPU for the quick and standard presets, not for paper).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: runs/NAME].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Start over in an --out that holds a run (replaces only its files).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or per-generation lines.")
@click.option(
    "--workers",
    type=int,
    help="Score candidates on N local Dask worker processes (needs evomal-sr[dask]); same front as without.",
)
@click.option(
    "--scheduler", help="Score candidates on an existing Dask cluster: its scheduler address, e.g. tcp://10.0.0.5:8786."
)
@click.option(
    "--chunk-size",
    help="Unique candidates per task sent to a worker, or 'balanced': one chunk per "
    "worker each generation [default: 8].",
)
def search(
    dataset,
    csv_path,
    npz_path,
    target,
    features,
    drop,
    kind,
    model,
    label_noise,
    engine,
    preset,
    population,
    generations,
    meta_iterations,
    local_search_scale,
    train_steps,
    fitness_eval_every,
    fitness_seeds,
    fitness_lr_grid,
    fitness_lr_ratio,
    operators,
    initial_fill,
    loss_scaling,
    final_selection,
    selection_margin,
    selection_scoring,
    selection_prior,
    selection_metric,
    selection_uncertainty,
    selection_lr_extend,
    no_local_search,
    deterministic,
    threads,
    seed,
    device,
    cuda_graph,
    program,
    out_dir,
    resume,
    quiet,
    workers,
    scheduler,
    chunk_size,
    force,
):
    """Discover learned losses for a dataset; writes the Pareto front to --out.

    \b
    Writes DIR/pareto.csv (Complexity,Loss,Equation), DIR/pareto.json,
    DIR/pareto.png, DIR/history.csv and DIR/checkpoint.json.

    \b
    Examples:
      evomal-sr search --dataset digits --preset quick --out runs/digits
      evomal-sr search --dataset digits --label-noise 0.4 --generations 10 --out runs/noisy
      evomal-sr search --csv data.csv --target label --drop id --out runs/mine
      evomal-sr search --npz images.npz --model lenet5 --device cuda --out runs/img
      evomal-sr search --dataset digits --out runs/digits --resume
    """
    from evomal_sr.core.presets import Preset, resolve_preset
    from evomal_sr.engines import check_engine_settings

    # the options named after a preset field override it (None: the preset's value)
    overrides = {name: value for name, value in locals().items() if name in Preset.__dataclass_fields__}
    settings = resolve_preset(preset, **overrides)  # validate before loading data
    check_engine_settings(engine, settings)  # before Julia starts
    chunk_size = check_chunk_size(chunk_size, name="--chunk-size")  # an int or "balanced" from the text
    executor = _executor_setting(workers, scheduler)
    if engine == "pysr":  # Julia must start before anything imports torch (LossSearch, the task do)
        from evomal_sr.engines.pysr import PySREngine, log_to_stderr

        PySREngine.prepare({"deterministic": deterministic, "threads": threads})
        if not quiet:
            log_to_stderr()
    from evomal_sr.search.estimator import LossSearch

    task = _load_task(dataset, csv_path, target, kind, model, label_noise, seed, npz_path, features, drop)
    out_dir = out_dir or f"runs/{task.name}"
    if resume and not force:  # a run killed before its first checkpoint starts again from the beginning
        resume, force = resume_or_restart(out_dir)
    progress = SearchProgress(settings.generations, quiet=quiet, selection=settings.final_selection == "fair")
    tick = time.perf_counter()
    try:
        fitted = LossSearch(
            engine=engine,
            preset=preset,
            seed=seed,
            device=device,
            local_search=not no_local_search,
            out_dir=out_dir,
            resume=resume,
            force=force,
            executor=executor,
            chunk_size=chunk_size,
            cuda_graph=cuda_graph,
            program=program,
            engine_options={"deterministic": deterministic, "threads": threads},
            on_generation=progress,
            verbose=0,
            **overrides,
        ).fit(task)
    except KeyboardInterrupt:
        report_interrupted(progress, out_dir)
    except OSError as exc:  # a full disk: which file, and whether --resume can continue
        progress.close()
        click.echo(f"Error: {write_failure_message(exc, out_dir)}", err=True)
        sys.exit(2)
    finally:
        progress.close()
    _print_results(fitted, out_dir, time.perf_counter() - tick)


def _print_results(fitted, out_dir: str, seconds: float) -> None:
    """The front, the final selection's verdict and where the files are."""
    front = fitted.pareto_front_
    execution = fitted.evaluator_.model_execution
    if execution["execution"] != "batched":
        click.echo(
            f"note: the model ran one copy at a time (vmap could not batch it: {execution['fallback_reason']})",
            err=True,
        )
    click.echo(front.table())
    if fitted.selection_ is not None:
        click.echo(f"\n{fitted.selection_}")
    click.echo(f"\n{len(front)} losses on the front; {seconds:.1f} s; results in {out_dir}/")


# -- reading results ------------------------------------------------------------------
