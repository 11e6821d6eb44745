"""Thin launcher: ``python cli.py ...`` runs the ``evomal-sr`` command from a checkout."""

from evomal_sr.cli.main import main

if __name__ == "__main__":
    main()
