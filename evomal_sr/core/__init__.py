"""Foundations every layer may import: file I/O, seeds, devices, task kinds, presets (no torch model code)."""
