"""Shared by the test modules: the one norm-wise error measure, exposed as a fixture."""

import os

import numpy as np
import pytest

# The command line's per-user caches (compare/caching.py) stay off in every lstm-compare process a test starts:
# tests never write to the real ~/.cache (the cache's own test turns it on in a temporary folder).
os.environ["LSTM_COMPARE_NO_CACHE"] = "1"


def normwise_error(actual, expected, scale=None):
    """max|actual - expected| / max|expected| over one tensor (``scale`` replaces the denominator when given).

    An all-zero reference has no scale to divide by (dh_next/dc_next after the last step, h_prev/c_prev at t=0
    from a zero state, a gate's parameter gradient when c_prev is zero): there the plain max|actual - expected|
    is returned, so the caller's tolerance demands near-exact absolute agreement instead.  Shapes must match
    exactly, so that broadcasting cannot hide a wrong axis; a NaN anywhere gives NaN, which fails every ``<=``.
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != reference shape {b.shape}"
    diff = float(np.max(np.abs(a - b), initial=0.0)) if not np.isnan(a).any() else float("nan")
    if scale is None:
        scale = float(np.max(np.abs(b), initial=0.0))
    return diff / scale if scale > 0 else diff


@pytest.fixture
def normwise():
    """The norm-wise error function ``normwise_error(actual, expected, scale=None)``."""
    return normwise_error
