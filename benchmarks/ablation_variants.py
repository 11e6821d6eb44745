"""The ablation's variants (``benchmarks/ablation.py``): each one's overrides of the ``standard`` preset.

Kept apart from the script that runs and judges them: this is data, one entry per variant, each with a
comment saying what it tried and when.
"""

from __future__ import annotations

#: Each variant: overrides of the ``standard`` preset.
NO_PRIOR = {"selection_prior": "none"}
THREE = {"selection_folds": 3, "selection_finalists": 0, **NO_PRIOR}  # every row on three folds (before halving)
DEFAULT = {"selection_folds": 5, "selection_finalists": 4, "selection_prior": "mae"}  # halving-5folds-4-mae
# the fitness of the suite's saved searches (the default until fitness-seeds-2-grid-2 replaced it): search
# variants run before that pin it, so that they mean today what they meant when they ran
SUITE_FITNESS = {"fitness_lr_grid": 4, "fitness_lr_ratio": 3.1623, "fitness_seeds": 1}
GRID_2 = {"fitness_seeds": 2, "fitness_lr_grid": 2, "fitness_lr_ratio": 10.0}  # the default's fitness since
ROWS_15 = {"selection_uncertainty": "folds-and-rows", "selection_margin": 1.5}  # the default's decision since
VARIANTS: dict[str, dict] = {
    "validation-600": {"selection_scoring": "validation", "selection_steps": 600, **THREE},
    "folds-600": {"selection_scoring": "folds", "selection_steps": 600, **THREE},
    "validation-1500": {"selection_scoring": "validation", "selection_steps": 1500, **THREE},
    "folds-1500": {"selection_scoring": "folds", "selection_steps": 1500, **THREE},
    "robust-grammar": {**SUITE_FITNESS, "operators": "robust", **THREE},
    # more folds for the verdict: five folds for every row, or successive halving (every row runs
    # two folds, the four best and the best known and learned run three more: about today's cost)
    "validation-1500-5folds": {"selection_folds": 5, "selection_finalists": 0, **NO_PRIOR},
    "halving-5folds-4": {"selection_folds": 5, "selection_finalists": 4, **NO_PRIOR},
    # the same, but a known loss other than MAE (noise-tolerant) is returned only where it beats MAE by
    # one paired SE on the folds (MAE always runs every fold)
    "halving-5folds-4-mae": DEFAULT,
    # the same, but the lr and stopping step of each fold chosen on validation rows, as the meta-test
    # chooses them (folds of the validation rows: one scores, the others choose; the training rows
    # train), where "validation" chooses on a part of the training rows, noisier on train-only noise
    "validation-folds-mae": {
        "selection_scoring": "validation-folds",
        "selection_folds": 5,
        "selection_finalists": 4,
        "selection_prior": "mae",
    },
    # the default, but each fold's lr, stopping step and score by the mean absolute error or the Huber
    # error on regression tasks (selection_metric): the same validation rows score every fold, so one
    # heavy-tailed label biases every fold alike under MSE; classification keeps the error rate (rows
    # as the default's)
    "metric-mae": {**DEFAULT, "selection_metric": "mae"},
    "metric-huber": {**DEFAULT, "selection_metric": "huber"},
    # the default, but every candidate's fitness is the mean of its best validation errors from two
    # initialisations (fitness_seeds=2: about twice the training of the search)
    "fitness-seeds-2": {**SUITE_FITNESS, **DEFAULT, "fitness_seeds": 2},
    # the same at the default's cost: two initialisations x two lrs (lr x {1, 10}) instead of one x four
    # (the default since, chosen on the development half)
    "fitness-seeds-2-grid-2": {**DEFAULT, **GRID_2},
    # the default now, with the front's best five (not three) on the final selection's short list: the
    # same search (same seed and settings), more learned losses for the selection to find a winner among
    "shortlist-5": {**DEFAULT, **GRID_2, "selection_shortlist": 5},
    # the default now, with 16 generations instead of 12 (a third more search, near the 5-minute budget;
    # not kept: 269-333 s alone on mnist1d-noise20-val, over the budget at the median, results_prose.md)
    "generations-16": {**DEFAULT, **GRID_2, "generations": 16},
    # the default now, with five times the local search (100 meta-iterations of the edge weights, not 20):
    # the EvoMAL mechanism that fits a loss's shape (GCE's q, SCE's mix) to the task; a profile of the
    # default search put local search at 1.2% of its time (breast_cancer-asym40-val, py-spy); not kept:
    # on the development half 1 task worse than the best known (digits-pair20) and 0 learned better
    "meta-iterations-100": {**DEFAULT, **GRID_2, "meta_iterations": 100},
    # the same, but each loss's edge weights kept at their initial norm (local_search_scale="fixed"): in
    # meta-iterations-100 the weights mostly grew together (a scale the lr grid already chooses), so
    # here the longer local search can only reshape the loss; not kept: tied on the targets and better on
    # the gap on the development half, but 308-312 s alone on mnist1d-noise20-val, over the budget
    "fixed-scale-100": {**DEFAULT, **GRID_2, "meta_iterations": 100, "local_search_scale": "fixed"},
    # the default's own local search (20 meta-iterations) with each loss's edge weights kept at their
    # initial norm: the fixed scale at the default's cost, where fixed-scale-100 was over the budget;
    # not kept: on the development half 1 task worse than the best known (digits-pair20), 0 learned better
    "fixed-scale": {**DEFAULT, **GRID_2, "local_search_scale": "fixed"},
    # the same with five times the meta-lr (0.05): Adam moves each weight by about the meta-lr per
    # iteration, so 20 iterations travel about as far as fixed-scale-100's 100, at the default's cost;
    # not kept: on the development half 0 learned losses better than the best known, against the default's 1
    "fixed-scale-lr5": {**DEFAULT, **GRID_2, "local_search_scale": "fixed", "meta_lr": 0.05},
    # the default's decision with another margin (selection_margin: how many paired SEs a learned loss
    # must beat the best known loss by, and a known loss the prior): the rows do not depend on it, so
    # each is derived from fitness-seeds-2-grid-2's saved rows; a sweep on the development half
    **{f"margin-{m:g}": {**DEFAULT, **GRID_2, "selection_margin": m} for m in (0.5, 1.5, 2.0, 3.0)},
    # the default, but each decision's paired SE holds the sampling error of the scored rows too (in
    # quadrature with the folds'): every fold scores the same validation rows, so the folds alone cannot
    # show how much a lead of a few rows owes to which rows were drawn (the fresh wine probe, RESULTS.md);
    # reruns only the selection, on fitness-seeds-2-grid-2's fronts (SEARCH_FROM), then every margin
    "rows": {**DEFAULT, **GRID_2, "selection_uncertainty": "folds-and-rows"},
    **{
        f"rows-margin-{m:g}": {**DEFAULT, **GRID_2, "selection_uncertainty": "folds-and-rows", "selection_margin": m}
        for m in (1.5, 2.0, 3.0)
    },
    # the default now (rows-margin-1.5) with each kind's noise-tolerant prior (selection_prior="robust": MAE for
    # classification, as now; log-cosh for regression, the best known loss on 3 of the 6 development regression
    # tasks, MAE on 1): reruns the selection of the regression tasks only, on fitness-seeds-2-grid-2's fronts;
    # a classification task's selection is rows-margin-1.5's (the same prior there). Judged by the probes' rule
    # (benchmarks/probe_tasks.py), written before it ran
    "robust-prior": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust"},
    # the default now (robust-prior) with SCE as the prior on every task: run on the ten-class tasks only, for
    # classes-sce; SCE is a classification loss
    "prior-sce": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "sce"},
    # the default now, but SCE, not MAE, the prior on tasks with more than MANY_CLASSES classes: robust-prior's run
    # on the other tasks, prior-sce's on those (BY_TASK); judged by the probes' rule, written before it ran
    "classes-sce": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust", "many_classes_prior": "sce"},
    # the default now, but each fold's lr and stopping step chosen on validation rows where the training rows'
    # class balance differs from the validation rows' (selection_scoring="auto": label shift, a chi-square test at
    # 1%; evaluation.label_shift); elsewhere robust-prior's run (BY_TASK). Judged by the probes' rule
    "auto-scoring": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust", "selection_scoring": "auto"},
    # the default now (robust-classes), with the first population's slots after the zoo filled with variants of
    # the zoo's losses (one crossover or subtree mutation each; initial_fill="variants") instead of random trees,
    # so the twelve generations search around the known losses (the issue's "evolution seeded from the zoo's
    # best"). Judged on the development half by the rule the earlier search variants were: the targets in order
    # (tasks worse than the best known, noisy tasks 20% below the standard loss, learned better than the best
    # known), then the mean gap; a tie keeps the default; kept only within the 5-minute budget timed alone. Not
    # kept: on the development half 1 task worse than the best known (breast_cancer-imbalance9), 0 learned better
    "zoo-variants": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust-classes", "initial_fill": "variants"},
    # the default now (robust-classes) with the extended grammar (operators="extended": adds exp), so the first
    # population holds GCE and log-cosh too, the best known losses of several noisy development tasks, which the
    # paper grammar cannot write, and local search can tune GCE's q (an edge weight on its constant). robust-grammar
    # (exp, pow and huber) was measured with an older selection and fitness; same rule as zoo-variants. Not kept: on
    # the development half 0 learned losses better than the best known (the default: 1), a tie on the other targets
    "extended-grammar": {**DEFAULT, **GRID_2, **ROWS_15, "selection_prior": "robust-classes", "operators": "extended"},
    # fixed-scale-100's searches (100 meta-iterations at a fixed scale: tied on the targets and better on the gap
    # with the selection of its day, over the budget alone on a slow day before FrozenLoss) with the default's
    # selection now (robust-classes, 1.5 SEs of folds and rows): reruns only the selection on its saved fronts
    # (SEARCH_FROM; FrozenLoss computes the same bits, so the search would find the same fronts today). Same rule
    # as zoo-variants, and kept only if timed alone within the budget, in alternation with the default: on a fast day
    # the seconds flatter, so the budget is read as (its time / the default's, two pairs on mnist1d-noise20-val) x
    # the default's slow-day 257 s in RESULTS.md <= 300 s, a ratio of at most 1.167. Measured 1.15 (2 pairs) and made
    # the default, with a condition written before its evaluation half ran: reverted if that half had more tasks worse
    # than the best known than the default's 0. It had 1 (friedman1-outliers20): reverted, not the default
    "fixed-scale-100-now": {
        **DEFAULT,
        **GRID_2,
        **ROWS_15,
        "selection_prior": "robust-classes",
        "meta_iterations": 100,
        "local_search_scale": "fixed",
    },
    # a longer fitness horizon (the search's candidates train 1000 steps, not 500), with the default selection
    "horizon-1000": {**SUITE_FITNESS, "train_steps": 1000, "selection_folds": 5, "selection_finalists": 4, **NO_PRIOR},
}
