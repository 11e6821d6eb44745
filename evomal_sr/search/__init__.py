"""The search API: :class:`LossSearch` (a scikit-learn estimator) and the baseline searches."""

from evomal_sr.search.estimator import LossSearch

__all__ = ["LossSearch"]
