"""The seed question answered end to end; see run.py and README.md beside this file."""
