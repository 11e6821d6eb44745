"""What a pickled :class:`~evomal_sr.search.estimator.LossSearch` keeps of its evaluator, and how it is rebuilt."""

from __future__ import annotations

import dataclasses
import warnings

from evomal_sr._version import __version__
from evomal_sr.scoring.evaluator import Evaluator


@dataclasses.dataclass(frozen=True)
class EvaluatorRecipe:
    """What rebuilds a fitted search's evaluator after unpickling: its arguments and its caches."""

    task: object
    arguments: dict
    state: dict

    @classmethod
    def of(cls, evaluator: Evaluator) -> EvaluatorRecipe:
        task = evaluator.task.to("cpu") if hasattr(evaluator.task, "to") else evaluator.task
        arguments = {
            "preset": evaluator.settings,
            "device": str(evaluator.device),
            "seed": evaluator.seed,
            "batched": evaluator.batched,
            "local_search": evaluator.local_search,
            "chunk_size": evaluator.chunk_size,
            "cuda_graph": evaluator.cuda_graph,
            "program": evaluator.program,
            "precision": evaluator.precision,
            "channels_last": evaluator.channels_last,
            "repair": False,
        }
        return cls(task, arguments, evaluator.state_dict())

    def build(self) -> Evaluator:
        evaluator = Evaluator(self.task, **self.arguments)
        evaluator.load_state_dict(self.state)
        return evaluator


class PicklableSearch:
    """How a fitted search pickles: ``evaluator_`` becomes an :class:`EvaluatorRecipe`, rebuilt on first use.

    A mixin placed before :class:`sklearn.base.BaseEstimator`, whose own ``__getstate__`` it extends.
    """

    def __getstate__(self) -> dict:
        """The pickled state: ``evaluator_`` becomes a recipe that rebuilds it on first use."""
        state = dict(super().__getstate__())
        evaluator = state.pop("evaluator_", None)
        if evaluator is not None:
            state["_evaluator_recipe"] = EvaluatorRecipe.of(evaluator)
        state["_evomal_sr_version"] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        saved = state.pop("_evomal_sr_version", None)
        if saved is not None and saved != __version__:
            warnings.warn(
                f"this LossSearch was pickled by evomal-sr {saved}; this is {__version__}; its results "
                "load, but refit to be sure of them",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: the evaluator_ of an unpickled search, built on first use
        recipe = self.__dict__.get("_evaluator_recipe")
        if name == "evaluator_" and recipe is not None:
            evaluator = recipe.build()
            self.__dict__["evaluator_"] = evaluator
            del self.__dict__["_evaluator_recipe"]
            return evaluator
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
