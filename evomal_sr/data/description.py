"""What a :class:`~evomal_sr.data.tasks.Task` says of itself: its JSON summary and its repr.

The summary is what checkpoints and saved runs record to tell whether they belong to a task.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from evomal_sr.data.arrays import class_names
from evomal_sr.data.models import model_name

if TYPE_CHECKING:  # the task imports this module
    from evomal_sr.data.tasks import Task


def describe_task(task: Task) -> dict:
    """The task's JSON-ready summary (:meth:`Task.describe <evomal_sr.data.tasks.Task.describe>`).

    ``fingerprint`` hashes the raw data, the split indices and the noise pattern.

    Examples
    --------
    >>> from evomal_sr.data.tasks import Task
    >>> describe_task(Task.builtin("iris"))["fingerprint"] == Task.builtin("iris").describe()["fingerprint"]
    True
    """
    noisy = np.flatnonzero(task.noisy_mask.cpu().numpy()).tobytes()
    options = task.noise_options.describe()
    if options:  # the defaults keep the fingerprint of before these options existed
        noisy += b"val" + np.flatnonzero(task.noisy_mask_val.cpu().numpy()).tobytes()
        noisy += task.y_train.cpu().numpy().tobytes() + task.y_val.cpu().numpy().tobytes()
    names = class_names(task.classes)
    return {
        "name": task.name,
        "kind": task.kind,
        "seed": task.seed,
        "label_noise": task.label_noise,
        **options,
        "model": model_name(task.model),
        "n_features": task.n_features,
        "n_outputs": task.n_outputs,
        "input_shape": list(task.input_shape),
        "n_train": task.n_train,
        "n_val": len(task.split_indices["val"]),
        "n_test": len(task.split_indices["test"]),
        "fingerprint": hashlib.sha256(task._fingerprint + noisy).hexdigest()[:16],
        **({"classes": names} if names else {}),  # labels not 0..C-1
        **({"source": task.source} if task.source else {}),
    }


def task_repr(task: Task) -> str:
    """One line naming the task's data, noise options, model and split sizes."""
    d = describe_task(task)
    return (
        f"Task(name={d['name']!r}, kind={d['kind']!r}, seed={d['seed']}, "
        f"label_noise={d['label_noise']}, "
        + "".join(f"{k}={d[k]!r}, " for k in task.noise_options.describe())
        + f"model={d['model']!r}, "
        f"n_features={d['n_features']}, n_outputs={d['n_outputs']}, "
        f"splits={d['n_train']}/{d['n_val']}/{d['n_test']})"
    )
