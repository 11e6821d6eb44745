"""The loss grammar: operators, expression trees, the whitelisting parser (no torch import)."""
