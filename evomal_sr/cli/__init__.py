"""The ``evomal-sr`` command line (Click)."""

from evomal_sr.cli.main import main

__all__ = ["main"]
