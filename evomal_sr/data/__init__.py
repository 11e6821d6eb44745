"""Data: built-in datasets, CSV reading, the model registry and :class:`~evomal_sr.data.tasks.Task`."""
