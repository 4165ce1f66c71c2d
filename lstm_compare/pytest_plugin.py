"""pytest plugin (the ``pytest11`` entry point): the ``lstm_compare`` fixture and its options.

    def test_my_lstm(lstm_compare):
        lstm_compare("my_lstm.py", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)

pytest loads this module in every session of every project in the environment, so it imports nothing at load:
no NumPy, torch or JAX, none of the harness.  The fixture's work (``lstm_compare.frontends.fixture``) comes in
when a test asks for the fixture, or a session sets one of its options.
"""

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from lstm_compare.frontends.fixture import LstmCompare


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lstm-compare", "LSTM comparison against PyTorch and JAX")
    group.addoption("--lstm-compare-reports", metavar="DIR",
                    help="write every lstm_compare call's divergence reports to DIR/<name>/, named as its baseline "
                         "(default: only on a failure, under pytest's temporary folder)")
    group.addoption("--lstm-compare-baseline", metavar="DIR",
                    help="check each lstm_compare call against its golden CSV in DIR, named after the test's node id "
                         "(overrides the lstm_compare_baseline ini setting)")
    group.addoption("--lstm-compare-update-baseline", action="store_true",
                    help="record the golden CSVs instead of checking them (only for calls that match)")
    group.addoption("--lstm-compare-factor", metavar="F",
                    help="how many times a tensor's error may grow past its baseline: a finite number above 1 "
                         "(default 10)")
    parser.addini("lstm_compare_baseline", "folder of lstm_compare's golden CSVs, relative to the ini file")
    parser.addini("lstm_compare_factor", "allowed error growth over the baseline (default 10)")


def pytest_configure(config: pytest.Config) -> None:
    """A wrong option is a usage error before any test runs (checked only where one is set)."""
    if (config.getoption("--lstm-compare-update-baseline") or config.getoption("--lstm-compare-factor") is not None
            or config.getini("lstm_compare_factor")):
        from lstm_compare.frontends.fixture import check_options

        check_options(config)


@pytest.fixture
def lstm_compare(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> "LstmCompare":
    """Compare an LSTM file with PyTorch and JAX; fails on a divergence or an accuracy regression."""
    from lstm_compare.frontends.fixture import LstmCompare

    return LstmCompare(request, tmp_path_factory)
