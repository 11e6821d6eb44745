"""Training machinery: the stacked model, the one masked population training kernel, the
partial-training fitness, local search, screening and the masked optimiser."""
