"""Loss modules: the compiled symbolic loss and ``LearnedLoss``, the standard and known losses,
ML3 and TaylorGLO loss networks, and loss-file I/O."""
