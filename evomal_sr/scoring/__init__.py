"""Scoring candidate losses during the search: rejection, local search, partial training.

(:mod:`evomal_sr.evaluation` is the other thing: the meta-test of finished losses.)
"""
