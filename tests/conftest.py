"""Test-wide settings."""

import os

# Spinning OpenMP threads slow tiny ops tenfold on a shared 2-core machine; this
# must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
