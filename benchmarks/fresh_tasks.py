"""The fresh probes' tasks: each probe's name and how its task is built (a built-in dataset or synthetic data).

``fresh_probes.py`` runs them; the scripts that reselect or judge a probe build its task here too.
"""

from __future__ import annotations

from sklearn.datasets import (
    make_blobs,
    make_circles,
    make_classification,
    make_friedman2,
    make_friedman3,
    make_gaussian_quantiles,
    make_hastie_10_2,
    make_moons,
    make_regression,
    make_sparse_uncorrelated,
)
from suite import BOTH, flips, pair, student_t, symmetric

import evomal_sr as es

#: class flips of the ten-class probes with asymmetric noise (Patrini et al. 2017's, for MNIST)
PATRINI = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}

#: Probe name -> ``Task.builtin`` keywords (the MLP, a seed outside the suite's 0).
FRESH: dict[str, dict] = {
    "wine-seed7-pair30": {"name": "wine", "seed": 7, **pair(0.3)},
    "friedman1-seed5-t1.5": {"name": "friedman1", "seed": 5, **student_t(0.4, 1.5)},
    "digits-seed3-noise25": {"name": "digits", "seed": 3, **symmetric(0.25, BOTH)},
    "breast_cancer-seed11-noise30": {"name": "breast_cancer", "seed": 11, **symmetric(0.3, BOTH)},
    "diabetes-seed4-t2": {"name": "diabetes", "seed": 4, **student_t(0.4, 2.0)},
    "digits-seed2-imbalance5": {"name": "digits", "seed": 2, "imbalance": 5.0},
    "digits-seed5-pair30": {"name": "digits", "seed": 5, **pair(0.3)},
    # the sixth session's, after its decisions
    "mnist1d-seed3-pair20": {"name": "mnist1d", "seed": 3, **pair(0.2)},
    "friedman1-seed7-outliers20": {"name": "friedman1", "seed": 7, **symmetric(0.2)},
    # the seventh session's, chosen before running, with no default changed that session
    "wine-seed13-noise40": {"name": "wine", "seed": 13, **symmetric(0.4, BOTH)},
    "sinusoid-seed9-t2": {"name": "sinusoid", "seed": 9, **student_t(0.4, 2.0)},
    "digits-seed8-noise40": {"name": "digits", "seed": 8, **symmetric(0.4)},
    "breast_cancer-seed8-pair30": {"name": "breast_cancer", "seed": 8, **pair(0.3, ("train",))},
    # the eighth session's, chosen before running, with no default changed that session
    "iris-seed21-pair20": {"name": "iris", "seed": 21, **pair(0.2)},
    "breast_cancer-seed17-imbalance7": {"name": "breast_cancer", "seed": 17, "imbalance": 7.0},
    "diabetes-seed19-outliers30": {"name": "diabetes", "seed": 19, **symmetric(0.3)},
    "mnist1d-seed11-noise30": {"name": "mnist1d", "seed": 11, **symmetric(0.3, BOTH)},
    # the ninth session's, chosen before running; that session changed no result of the default (FrozenLoss is exact)
    "digits-seed13-noise20": {"name": "digits", "seed": 13, **symmetric(0.2, BOTH)},
    "friedman1-seed11-t3": {"name": "friedman1", "seed": 11, **student_t(0.5, 3.0, ("train",))},
    "wine-seed5-pair20": {"name": "wine", "seed": 5, **pair(0.2, ("train",))},
    "iris-seed9-noise30": {"name": "iris", "seed": 9, **symmetric(0.3)},
    # the ninth session's blind check of selection_prior="robust-classes", named before they ran
    "digits-seed17-pair20": {"name": "digits", "seed": 17, **pair(0.2)},
    "mnist1d-seed5-noise20": {"name": "mnist1d", "seed": 5, **symmetric(0.2)},
    "digits-seed19-imbalance9": {"name": "digits", "seed": 19, "imbalance": 9.0},
    "breast_cancer-seed3-noise20": {"name": "breast_cancer", "seed": 3, **symmetric(0.2, BOTH)},
    # the tenth session's blind check of the same default, named before they ran, no default changed before them
    "mnist1d-seed21-pair30": {"name": "mnist1d", "seed": 21, **pair(0.3)},
    "digits-seed23-noise30": {"name": "digits", "seed": 23, **symmetric(0.3)},
    "wine-seed27-pair20": {"name": "wine", "seed": 27, **pair(0.2)},
    "diabetes-seed23-t2": {"name": "diabetes", "seed": 23, **student_t(0.5, 2.0)},
    "breast_cancer-seed29-imbalance5": {"name": "breast_cancer", "seed": 29, "imbalance": 5.0},
    "sinusoid-seed31-outliers30": {"name": "sinusoid", "seed": 31, **symmetric(0.3)},
    # the eleventh session's, named before they ran: the same default search, judged by the meta-test with its lr
    # grid extended past an edge (lr_extend=4, its default since that session)
    "mnist1d-seed29-noise30": {"name": "mnist1d", "seed": 29, **symmetric(0.3, BOTH)},
    "digits-seed31-pair30": {"name": "digits", "seed": 31, **pair(0.3, ("train",))},
    "wine-seed33-noise30": {"name": "wine", "seed": 33, **symmetric(0.3)},
    "friedman1-seed29-t2": {"name": "friedman1", "seed": 29, **student_t(0.5, 2.0)},
    # the twelfth session's, named before they ran: the default with MAE the regression prior again, judged by
    # the meta-test with its lr grid extended and its fallback on divergence (both defaults now)
    "friedman1-seed37-outliers30": {"name": "friedman1", "seed": 37, **symmetric(0.3)},
    "sinusoid-seed41-t3": {"name": "sinusoid", "seed": 41, **student_t(0.5, 3.0)},
    "breast_cancer-seed43-noise30": {"name": "breast_cancer", "seed": 43, **symmetric(0.3, BOTH)},
    "mnist1d-seed37-pair20": {"name": "mnist1d", "seed": 37, **pair(0.2)},
    # four more of the same default, named before they ran, after the four above were reported
    "digits-seed47-pair30": {"name": "digits", "seed": 47, **pair(0.3)},
    "diabetes-seed43-outliers20": {"name": "diabetes", "seed": 43, **symmetric(0.2)},
    "wine-seed47-noise30": {"name": "wine", "seed": 47, **symmetric(0.3, BOTH)},
    "friedman1-seed47-t2": {"name": "friedman1", "seed": 47, **student_t(0.5, 2.0)},
    # the thirteenth session's, named before they ran; no default changed since the twelfth session's probes
    "digits-seed53-pair25": {"name": "digits", "seed": 53, **pair(0.25)},
    "mnist1d-seed59-noise40": {"name": "mnist1d", "seed": 59, **symmetric(0.4)},
    "sinusoid-seed61-t1.5": {"name": "sinusoid", "seed": 61, **student_t(0.4, 1.5)},
    "breast_cancer-seed67-asym30": {
        "name": "breast_cancer",
        "seed": 67,
        "noise": [[0.7, 0.3], [0.0, 1.0]],
        "noisy_splits": ("train", "val"),
    },
    # four more of the same default, named before they ran, after the four above were reported
    "iris-seed71-noise40": {"name": "iris", "seed": 71, **symmetric(0.4, BOTH)},
    "digits-seed73-imbalance7": {"name": "digits", "seed": 73, "imbalance": 7.0},
    "friedman1-seed79-t1.5": {"name": "friedman1", "seed": 79, **student_t(0.4, 1.5, ("train",))},
    "mnist1d-seed83-pair30": {"name": "mnist1d", "seed": 83, **pair(0.3, ("train",))},
    # the blind check of selection_prior="robust-shift" (label smoothing under label shift, the default since the
    # thirteenth session), named before they ran: class imbalance in the training rows, the kind it changes
    "breast_cancer-seed89-imbalance6": {"name": "breast_cancer", "seed": 89, "imbalance": 6.0},
    "digits-seed97-imbalance4": {"name": "digits", "seed": 97, "imbalance": 4.0},
    "wine-seed101-imbalance5": {"name": "wine", "seed": 101, "imbalance": 5.0},
    "mnist1d-seed103-imbalance8": {"name": "mnist1d", "seed": 103, "imbalance": 8.0},
    # the fourteenth session's check of robust-shift's named risk, named before they ran: asymmetric noise in the
    # training rows only also moves the training class balance away from the validation rows', so the label-shift
    # test may flag it and make the prior label smoothing, a loss not built for noise. Chosen by that test (run on
    # the task before any training): the first three are flagged, digits-seed113 is not (a control). The ten-class
    # flips are Patrini et al. 2017's for MNIST: 2->7, 3->8, 5<->6, 7->1.
    "breast_cancer-seed107-asym40-train": {"name": "breast_cancer", "seed": 107, **flips(0.4, 2, {0: 1})},
    "mnist1d-seed127-asym30-train": {"name": "mnist1d", "seed": 127, **flips(0.3, 10, PATRINI)},
    "mnist1d-seed131-asym40-train": {"name": "mnist1d", "seed": 131, **flips(0.4, 10, PATRINI)},
    "digits-seed113-asym30-train": {"name": "digits", "seed": 113, **flips(0.3, 10, PATRINI)},
    # named before they ran, after digits-seed113-asym30-train returned the first learned loss better than every
    # known loss on a fresh probe: does that repeat under class-dependent flips? No default changed since.
    "digits-seed137-asym30-val": {"name": "digits", "seed": 137, **flips(0.3, 10, PATRINI, BOTH)},
    "digits-seed139-asym40-train": {"name": "digits", "seed": 139, **flips(0.4, 10, PATRINI)},
    "mnist1d-seed149-asym20-train": {"name": "mnist1d", "seed": 149, **flips(0.2, 10, PATRINI)},
    "iris-seed157-asym30-train": {"name": "iris", "seed": 157, **flips(0.3, 3, {0: 1, 1: 2})},
    # four more of today's default, of other kinds, named before they ran (the judge's collapse fallback is the
    # only change since the thirteenth session's default)
    "friedman1-seed163-outliers25": {"name": "friedman1", "seed": 163, **symmetric(0.25)},
    "sinusoid-seed167-t2-train": {"name": "sinusoid", "seed": 167, **student_t(0.5, 2.0, ("train",))},
    "breast_cancer-seed173-noise20-val": {"name": "breast_cancer", "seed": 173, **symmetric(0.2, BOTH)},
    "wine-seed179-noise25-val": {"name": "wine", "seed": 179, **symmetric(0.25, BOTH)},
    # the blind check of selection_scoring="auto-regression" (the default since the fourteenth session: regression
    # folds choose on validation rows), named before they ran: regression tasks, the kind it changes
    "friedman1-seed181-outliers20": {"name": "friedman1", "seed": 181, **symmetric(0.2)},
    "diabetes-seed191-t2-train": {"name": "diabetes", "seed": 191, **student_t(0.5, 2.0, ("train",))},
    "sinusoid-seed193-outliers25": {"name": "sinusoid", "seed": 193, **symmetric(0.25)},
    "friedman1-seed197-t1.5": {"name": "friedman1", "seed": 197, **student_t(0.4, 1.5)},
    # the fifteenth session's, named before they ran; no default changed that session (selection_lr_extend=4 was
    # not kept: selection_extend.py)
    "digits-seed211-noise30-val": {"name": "digits", "seed": 211, **symmetric(0.3, BOTH)},
    "mnist1d-seed223-pair25": {"name": "mnist1d", "seed": 223, **pair(0.25)},
    "diabetes-seed227-t2": {"name": "diabetes", "seed": 227, **student_t(0.5, 2.0)},
    "breast_cancer-seed229-imbalance8": {"name": "breast_cancer", "seed": 229, "imbalance": 8.0},
    # the blind check of selection_metric="mae" (the default since the fifteenth session: regression folds choose
    # and score by MAE), named before they ran: regression tasks, the kind it changes, heavy tails in both splits
    # (where the validation targets are wild) and outliers in the training rows
    "diabetes-seed233-t1.5": {"name": "diabetes", "seed": 233, **student_t(0.4, 1.5)},
    "friedman1-seed239-t2": {"name": "friedman1", "seed": 239, **student_t(0.5, 2.0)},
    "sinusoid-seed241-t2.5": {"name": "sinusoid", "seed": 241, **student_t(0.5, 2.5)},
    "diabetes-seed251-outliers25": {"name": "diabetes", "seed": 251, **symmetric(0.25)},
    # the blind check of adaptive-huber in the regression zoo (the sixteenth session: benchmarks/adaptive_huber.py),
    # named before they ran: regression tasks, the kind it changes; the judge's zoo holds adaptive-huber too
    "diabetes-seed257-t2-train": {"name": "diabetes", "seed": 257, **student_t(0.5, 2.0, ("train",))},
    "friedman1-seed263-outliers30": {"name": "friedman1", "seed": 263, **symmetric(0.3)},
    "sinusoid-seed269-t1.5": {"name": "sinusoid", "seed": 269, **student_t(0.4, 1.5)},
    "friedman1-seed271-t3": {"name": "friedman1", "seed": 271, **student_t(0.5, 3.0)},
    # the blind check of adaptive-huber as the regression prior (the sixteenth session's second look:
    # benchmarks/adaptive_huber_prior.py), named before they ran
    "diabetes-seed337-outliers25": {"name": "diabetes", "seed": 337, **symmetric(0.25)},
    "friedman1-seed347-t2-train": {"name": "friedman1", "seed": 347, **student_t(0.5, 2.0, ("train",))},
    "sinusoid-seed349-outliers20": {"name": "sinusoid", "seed": 349, **symmetric(0.2)},
    "diabetes-seed353-t1.5": {"name": "diabetes", "seed": 353, **student_t(0.4, 1.5)},
    # the seventeenth session's, named before they ran, on data no benchmark had used (scikit-learn's synthetic
    # makers, :data:`SYNTHETIC`); no default changed that session (OnlineLearnedLoss was not kept: online_weights.py)
    "classification6-seed401-pair30": {"name": "classification6", "seed": 401, **pair(0.3)},
    "moons-seed409-noise30-val": {"name": "moons", "seed": 409, **symmetric(0.3, BOTH)},
    "classification4-seed431-imbalance8": {"name": "classification4", "seed": 431, "imbalance": 8.0},
    "friedman3-seed419-t2": {"name": "friedman3", "seed": 419, **student_t(0.5, 2.0)},
    "regression8-seed421-outliers20": {"name": "regression8", "seed": 421, **symmetric(0.2)},
    # four more of the kind, named after those five were reported and before they ran
    "classification10-seed433-noise30-val": {"name": "classification10", "seed": 433, **symmetric(0.3, BOTH)},
    "circles-seed439-asym30-train": {"name": "circles", "seed": 439, **flips(0.3, 2, {0: 1})},
    "friedman2-seed443-outliers25": {"name": "friedman2", "seed": 443, **symmetric(0.25)},
    "classification3-seed449-pair20": {"name": "classification3", "seed": 449, **pair(0.2)},
    # the eighteenth session's, named before they ran, on makers no probe had used; no default changed since the
    # sixteenth session (the seventeenth's OnlineLearnedLoss was not kept)
    "blobs8-seed457-pair25": {"name": "blobs8", "seed": 457, **pair(0.25)},
    "quantiles4-seed461-noise30-val": {"name": "quantiles4", "seed": 461, **symmetric(0.3, BOTH)},
    "hastie-seed463-imbalance6": {"name": "hastie", "seed": 463, "imbalance": 6.0},
    "sparse-seed467-t1.5": {"name": "sparse", "seed": 467, **student_t(0.4, 1.5)},
}

#: Data no built-in dataset holds, for probes: name -> ``maker(seed) -> (X, y)``, scikit-learn's synthetic makers.
SYNTHETIC = {
    "classification6": lambda seed: make_classification(
        2000, 20, n_informative=8, n_redundant=4, n_classes=6, n_clusters_per_class=2, random_state=seed
    ),
    "classification4": lambda seed: make_classification(
        1500, 12, n_informative=6, n_redundant=2, n_classes=4, class_sep=1.2, random_state=seed
    ),
    "classification10": lambda seed: make_classification(
        3000, 30, n_informative=12, n_redundant=4, n_classes=10, n_clusters_per_class=1, random_state=seed
    ),
    "classification3": lambda seed: make_classification(1200, 10, n_informative=5, n_classes=3, random_state=seed),
    "moons": lambda seed: make_moons(1000, noise=0.2, random_state=seed),
    "circles": lambda seed: make_circles(1000, noise=0.1, factor=0.5, random_state=seed),
    "friedman2": lambda seed: make_friedman2(1000, random_state=seed),
    "friedman3": lambda seed: make_friedman3(1000, random_state=seed),
    "regression8": lambda seed: make_regression(1000, 8, n_informative=5, random_state=seed),
    "blobs8": lambda seed: make_blobs(2000, n_features=10, centers=8, cluster_std=3.0, random_state=seed),
    "quantiles4": lambda seed: make_gaussian_quantiles(n_samples=1500, n_features=6, n_classes=4, random_state=seed),
    "hastie": lambda seed: _binary(make_hastie_10_2(2000, random_state=seed)),
    "sparse": lambda seed: make_sparse_uncorrelated(1000, n_features=10, random_state=seed),
}


def _binary(data):
    """``make_hastie_10_2``'s labels are -1 and 1; a classification task wants 0 and 1."""
    X, y = data
    return X, (y > 0).astype(int)


def probe_task(name: str) -> es.Task:
    """Probe ``name``'s task: a built-in dataset with the MLP, or synthetic data (:data:`SYNTHETIC`) with it."""
    options = FRESH[name]
    maker = SYNTHETIC.get(options["name"])
    if maker is None:
        return es.Task.builtin(model="mlp", **options)
    X, y = maker(options["seed"])
    return es.Task.from_arrays(X, y, model="mlp", **options)
