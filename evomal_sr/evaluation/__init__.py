"""Meta-testing finished losses on held-out data, and its report."""
