"""What a pickled :class:`~evomal_sr.search.estimator.LossSearch` keeps of its evaluator, and how it is rebuilt."""

from __future__ import annotations

import dataclasses

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
