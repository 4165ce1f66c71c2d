"""The ``lstm_compare`` fixture's work, imported only when a test uses the fixture or its options
(``lstm_compare.pytest_plugin`` stays free to load).

The fixture asserts a match exactly like ``lstm_compare.assert_lstm_matches`` and, when a baseline folder is set
(``--lstm-compare-baseline DIR`` or ``lstm_compare_baseline = DIR`` in the ini file), also checks each tensor's
worst error against a golden CSV in DIR named after the test's full node id (``baseline_name``): growing more
than ``--lstm-compare-factor`` times (default 10; a finite number above 1) fails, even inside tolerance.
``--lstm-compare-update-baseline`` records the golden files instead.  The reports of a failure go to
``--lstm-compare-reports DIR`` when given, else under pytest's own temporary folder (which pytest prunes).
"""

import hashlib
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

if TYPE_CHECKING:
    from typing import Unpack

    from lstm_compare.frontends.assertions import ComparisonKeywords
    from lstm_compare.modes.records import Report
    from lstm_compare.usercode.conventions.base import Source


def check_options(config: pytest.Config) -> None:
    """The options' mistakes, as ``pytest.UsageError`` before any test runs."""
    if config.getoption("--lstm-compare-update-baseline") and _baseline_dir(config) is None:
        raise pytest.UsageError("--lstm-compare-update-baseline needs --lstm-compare-baseline DIR "
                                "(or lstm_compare_baseline in the ini file)")
    _factor(config)


READABLE = 80  # characters of the node id kept in a baseline's file name; a hash of all of it follows


def baseline_name(nodeid: str, call: int = 1) -> str:
    """The golden CSV's file name for the ``call``-th comparison in the test ``nodeid``: the node id made safe for
    a file name and cut to ``READABLE`` characters, then 12 hex digits of its SHA-256, so that ids differing only
    in characters a file name cannot hold ('a b' and 'a/b'), or two modules' ``test_matches``, never share one
    file, and a 300-character id still gives a short name."""
    key = nodeid if call == 1 else f"{nodeid}#{call}"
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_.")[:READABLE]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _baseline_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("--lstm-compare-baseline")
    if option:
        return Path(option).resolve()
    ini = config.getini("lstm_compare_baseline")
    if not ini:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / ini).resolve()


def _factor(config: pytest.Config) -> float | None:
    """The --lstm-compare-factor option, else the ini setting, else None (the default, 10); it must be a finite
    number above 1 (at 1 or below, every tensor would 'regress'), else a ``pytest.UsageError``."""
    option = config.getoption("--lstm-compare-factor")
    text = option if option is not None else config.getini("lstm_compare_factor")
    if text is None or text == "":
        return None
    try:
        factor = float(text)
    except ValueError:
        factor = math.nan
    if not (math.isfinite(factor) and factor > 1):
        raise pytest.UsageError(f"--lstm-compare-factor (or lstm_compare_factor) must be a finite number above 1, "
                                f"not {text!r}")
    return factor


class LstmCompare:
    """The fixture's value: call it like ``assert_lstm_matches``; it returns the ``lstm_compare.Report``."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._config = request.config
        self._nodeid = request.node.nodeid
        self._tmp = tmp_path_factory
        self._calls = 0

    def __call__(self, impl: "Source", *, baseline: str | Literal[False] | None = None,
                 **keywords: "Unpack[ComparisonKeywords]") -> "Report":
        """Compare ``impl`` with the keywords of ``assert_lstm_matches`` (``steps=``, ..., ``tolerance_factor=``).

        ``baseline`` names the golden CSV (default: ``baseline_name`` of the test's node id and of which call
        this is in the test); ``baseline=False`` skips the baseline check for this call.
        """
        __tracebackhide__ = True
        from lstm_compare.frontends.assertions import compare_lstm, mismatch_message
        from lstm_compare.output.report import write_reports

        self._calls += 1
        name = baseline_name(self._nodeid, self._calls)
        report = compare_lstm(impl, **keywords)
        reports_dir = self._config.getoption("--lstm-compare-reports")
        paths = None
        if reports_dir:
            paths = write_reports(report, Path(reports_dir) / name)
        if report.diverged:
            paths = paths or write_reports(report, self._tmp.mktemp(f"lstm-compare-{name}", numbered=True))
            raise AssertionError(mismatch_message(report, paths[0]))
        folder = _baseline_dir(self._config)
        if baseline is not False and folder is not None:
            self._check_baseline(report, folder / f"{baseline or name}.csv")
        return report

    def _check_baseline(self, report: "Report", path: Path) -> None:
        __tracebackhide__ = True
        from lstm_compare.output.baseline import (DEFAULT_FACTOR, BaselineError, read_baseline, regression_message, regressions,
                                      write_baseline)

        if self._config.getoption("--lstm-compare-update-baseline"):
            write_baseline(report, path)
            return
        if not path.is_file():
            raise AssertionError(f"no lstm-compare baseline at {path}; record one with "
                                 f"pytest --lstm-compare-update-baseline")
        factor = _factor(self._config) or DEFAULT_FACTOR  # None: not set (0 and below are refused at start)
        try:
            baseline = read_baseline(path)
            found = regressions(report, baseline, factor)
        except BaselineError as error:  # names the file already
            raise AssertionError(f"{error}; record it again with --lstm-compare-update-baseline") from None
        except ValueError as error:
            raise AssertionError(f"{path}: {error}; record it again with --lstm-compare-update-baseline") from None
        if found:
            raise AssertionError(regression_message(found, path, factor))
