"""Runnable examples: each a package, run with ``python -m examples.<name>`` from the repository root."""
