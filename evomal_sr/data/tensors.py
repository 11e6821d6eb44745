"""A task's tensors: standardised with training statistics, labels corrupted as its noise options say."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evomal_sr.data.arrays import check_float32_splits
from evomal_sr.data.noise import NoiseOptions, corrupt_split
from evomal_sr.data.splits import SPLITS, standardise, train_stats

#: The task's tensors (what :meth:`Task.to` moves).
TENSOR_ATTRIBUTES = (
    "X_train",
    "y_train",
    "y_train_clean",
    "X_val",
    "y_val",
    "y_val_clean",
    "X_test",
    "y_test",
    "noisy_mask",
    "noisy_mask_val",
)


def split_tensors(
    X: np.ndarray,
    y: np.ndarray,
    idx: dict[str, np.ndarray],
    *,
    kind: str,
    n_outputs: int,
    feature_names: list[str],
    noise_options: NoiseOptions,
    label_noise: float,
    seed: int,
) -> dict[str, Any]:
    """The attributes :class:`~evomal_sr.data.tasks.Task` holds for its data, by name.

    Features (and regression targets) are standardised with the training rows'
    statistics and checked to stay finite in float32 in every split; the training
    (and, with ``noisy_splits``, validation) labels are corrupted; the clean labels
    and the exact noise masks are kept beside them.
    """
    out: dict[str, Any] = {}
    out["feature_mean"], out["feature_std"] = train_stats(X[idx["train"]])
    Xs = standardise(X, out["feature_mean"], out["feature_std"], feature_names, "feature")
    check_float32_splits(Xs, idx, feature_names, "feature")  # no split may hold an inf once float32
    out["target_mean"] = out["target_std"] = None
    if kind == "regression":
        out["target_mean"], out["target_std"] = train_stats(y[idx["train"]])
        names = [f"target {j}" for j in range(y.shape[1])]
        y = standardise(y, out["target_mean"], out["target_std"], names, "target")
        check_float32_splits(y, idx, names, "target")
    y_train_clean, y_val_clean = y[idx["train"]], y[idx["val"]]
    noisy: dict[str, Any] = {"kind": kind, "n_classes": n_outputs, "label_noise": label_noise, "seed": seed}
    y_train, mask = corrupt_split(y_train_clean, "train", noise_options, **noisy)
    y_val, mask_val = corrupt_split(y_val_clean, "val", noise_options, **noisy)
    ydtype = torch.int64 if kind == "classification" else torch.float32

    def tensor(a, dtype):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    out["X_train"], out["X_val"], out["X_test"] = (tensor(Xs[idx[s]], torch.float32) for s in SPLITS)
    out["y_train"], out["y_train_clean"] = tensor(y_train, ydtype), tensor(y_train_clean, ydtype)
    out["y_val"], out["y_val_clean"] = tensor(y_val, ydtype), tensor(y_val_clean, ydtype)
    out["y_test"] = tensor(y[idx["test"]], ydtype)
    out["noisy_mask"] = torch.as_tensor(mask, dtype=torch.bool)
    out["noisy_mask_val"] = torch.as_tensor(mask_val, dtype=torch.bool)
    return out
