"""The faster ways of measuring and writing (issue 10) give the very bytes of the plain ones."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lstm_compare
from lstm_compare import caching
from lstm_compare.measuring import kernels
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.measuring.measure import expectation, measure, outer_expectation, outer_rows, outer_scale
from lstm_compare.output.report import divergence_frame, first_divergence_frame, write_divergence_csv, write_first_divergence_csv
from lstm_compare.measuring.tolerance import tolerance_for

ROOT = Path(__file__).resolve().parent.parent


def factors(rng, S=3, A=7, C=5, specials=True):
    """Random (S, A), (S, C) float64 factors with negative values, zeros and (optionally) NaN and Inf."""
    a, b = rng.normal(size=(S, A)), rng.normal(size=(S, C))
    a[0, 1] = b[1, 2] = 0.0
    a[1, 0] = -0.0
    if specials:
        a[2, 3], b[2, 0] = np.inf, np.nan
    return a, b


def same_bits(x, y):
    """Equal dtype, shape and bits (any NaN equals any NaN: the CSV writes every NaN alike)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.kind != "f":
        return x.tobytes() == y.tobytes()
    nan = np.isnan(x)
    return bool((nan == np.isnan(y)).all()) and x[~nan].tobytes() == y[~nan].tobytes()


@pytest.mark.parametrize("seed", range(5))
def test_scale_from_factors_equals_the_formed_arrays_scale(seed):
    a, b = factors(np.random.default_rng(seed), specials=seed > 2)
    t = outer_rows(a, b)
    assert same_bits(outer_scale(a, b), np.maximum(t.max(axis=1), -t.min(axis=1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outer_products_formed_by_torch_are_numpys_bit_for_bit(dtype, monkeypatch):
    import torch  # noqa: F401 - outer_rows uses torch only where it is imported

    rng = np.random.default_rng(7)
    a, b = factors(rng, S=4, A=33, C=19)
    tiny = np.finfo(dtype).tiny
    a[3, :4], b[3, :4] = tiny, [0.5, 1e-3, -tiny, np.finfo(dtype).max]  # subnormal and overflowing products
    a, b = a.astype(dtype), b.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        numpy_formed = (a[:, :, None] * b[:, None, :]).reshape(4, -1)
    monkeypatch.setattr("lstm_compare.measuring.measure._TORCH_MIN_ELEMENTS", 0)
    assert same_bits(outer_rows(a, b), numpy_formed)
    assert same_bits(outer_rows(a, b, np.float64), numpy_formed.astype(np.float64))
    read_only = a.copy()
    read_only.flags.writeable = False  # NumPy forms it (torch would warn)
    with np.errstate(over="ignore", invalid="ignore"):
        assert same_bits(outer_rows(read_only, b), numpy_formed)


@pytest.mark.parametrize("kernel", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factored_expectation_and_measure_equal_the_formed_ones_bit_for_bit(kernel, dtype):
    rng = np.random.default_rng(1)
    a, b = factors(rng, S=4, A=9, C=6, specials=False)
    a[3], b[3, 0] = 0.0, 0.0  # a step whose contribution is exactly zero in both dtypes
    pair = (a, b)
    same = (a.astype(dtype), b.astype(dtype)) if dtype == np.float32 else pair  # the same object: a float64 run
    truth = outer_rows(a, b)
    formed_same = outer_rows(*same) if dtype == np.float32 else truth
    tolerance = tolerance_for(dtype)
    with kernels.use(kernel and kernels.compile_now(dtype)):
        factored = outer_expectation(pair, same, tolerance)
        plain = expectation(truth, formed_same, tolerance)
        for field in ("noise_floor", "tolerance"):
            assert same_bits(getattr(factored, field), getattr(plain, field)), field
        assert np.array_equal(factored.scale, plain.scale)  # (its zero's sign aside: only compared with > 0)
        actual = formed_same.astype(dtype).copy()
        actual[0, 3] = np.nan  # NaN, Inf, a zero, wrong values, and a step that matches exactly
        actual[1, :5] = np.inf
        actual[1, 7] = np.nan
        actual[2, 10] += 1.0
        actual[2, 11] = 0.0
        got, want = measure(actual, factored), measure(actual, plain)
    assert got.keys() == want.keys()
    for key in want:
        assert same_bits(got[key], want[key]), key


def test_the_kernels_compile_and_agree_with_numpy_on_many_random_steps():
    if not kernels.compile_now(np.float32):
        pytest.skip("numba is not installed")
    assert_kernels_measure_as_numpy_does(np.random.default_rng(7), S=16, A=33, C=17)


def assert_kernels_measure_as_numpy_does(rng, S, A, C):
    """Noise floors and measurements of random float32 steps (with NaN and +-Inf), kernels against NumPy."""
    a, b = factors(rng, S=S, A=A, C=C, specials=False)
    same = (a.astype(np.float32), b.astype(np.float32))
    actual = outer_rows(*same) + rng.normal(size=(S, A * C)).astype(np.float32) * 1e-6
    actual[3, 5], actual[4, 9], actual[1, 0] = np.nan, np.inf, -np.inf
    results = []
    for use in (False, True):
        with kernels.use(use):
            e = outer_expectation((a, b), same, tolerance_for(np.float32))
            results.append((e.noise_floor, measure(actual, e)))
    assert same_bits(results[0][0], results[1][0])
    for key in results[0][1]:
        assert same_bits(results[0][1][key], results[1][1][key]), key


@pytest.fixture(scope="module")
def bug_report():
    bug = next(b for b in CATALOG if b.name == "forget_derivative_uses_c")
    config = lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=9, hidden=4, dtype="float32"))
    return lstm_compare.run(bug.module(), config)


def test_the_streamed_divergence_csv_is_the_pandas_frames_csv(tmp_path, bug_report, monkeypatch):
    monkeypatch.setattr("lstm_compare.output.report.CHUNK_ROWS", 7)  # many chunks, across group boundaries
    write_divergence_csv(bug_report, tmp_path / "streamed.csv")
    divergence_frame(bug_report).to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n")
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    assert_first_divergence_written_as_pandas_does(bug_report, tmp_path)


def assert_first_divergence_written_as_pandas_does(report, folder):
    write_first_divergence_csv(report, folder / "first.csv")
    first_divergence_frame(report).to_csv(folder / "first-pandas.csv", index=False, lineterminator="\n")
    assert (folder / "first.csv").read_bytes() == (folder / "first-pandas.csv").read_bytes()


def test_the_streamed_csv_of_a_report_with_exceptions_and_user_names(tmp_path):
    source = (ROOT / "lstm_compare" / "handrolled" / "cs231n_lstm.py").read_text()
    broken = tmp_path / "raises.py"  # raises in the step backward: exception rows beside measured ones
    line = "    x, prev_h, prev_c, Wx, Wh, b, i, f, o, g, tanh_c = cache\n"
    assert source.count(line) == 1
    broken.write_text(source.replace(line, line + "    if dnext_c.any():\n        raise ValueError('no')\n"))
    report = lstm_compare.run(str(broken), lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=5, batch=2)))
    assert report.failures
    write_divergence_csv(report, tmp_path / "streamed.csv")
    frame = divergence_frame(report)
    frame.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n")
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    assert (frame["tensor"] == "exception").any()
    assert_first_divergence_written_as_pandas_does(report, tmp_path)


def test_forcing_the_kernels_on_a_small_problem_changes_no_figure(bug_report):
    if not kernels.compile_now(np.float32):
        pytest.skip("numba is not installed")
    bug = next(b for b in CATALOG if b.name == "forget_derivative_uses_c")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "MIN_ELEMENTS", 0)
        fast = lstm_compare.run(bug.module(), bug_report.config)
    pd.testing.assert_frame_equal(divergence_frame(fast), divergence_frame(bug_report))


def test_importing_and_running_changes_no_jax_cache_setting(bug_report):
    import jax

    assert jax.config.jax_compilation_cache_dir in (None, "")
    assert caching.numba_cache_dir() is None


def _cli(tmp_path, *flags):
    env = {k: v for k, v in os.environ.items() if k not in (caching.NO_CACHE_VARIABLE, "CI")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "lstm_compare", "report", "--steps", "3", "--out", str(tmp_path / "r"),
                           *flags], env=env, capture_output=True, text=True, cwd=ROOT)


def test_the_command_line_keeps_jax_compilations_in_the_per_user_cache(tmp_path):
    assert _cli(tmp_path, "--reference", "jax").returncode == 0
    assert any((tmp_path / "cache" / "lstm-compare" / "jax").iterdir())


def test_no_cache_keeps_the_per_user_cache_untouched(tmp_path):
    assert _cli(tmp_path, "--reference", "jax", "--no-cache").returncode == 0
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("variable", [caching.NO_CACHE_VARIABLE, "CI"])
def test_the_environment_turns_the_cache_off(variable, monkeypatch):
    monkeypatch.delenv(caching.NO_CACHE_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(caching, "_PROGRAM", True)
    assert caching.wanted(no_cache_flag=False)
    monkeypatch.setenv(variable, "1" if variable != "CI" else "true")
    assert not caching.wanted(no_cache_flag=False)


def test_first_divergence_csv_of_a_clean_run_is_the_pandas_header(tmp_path):
    from lstm_compare import handrolled

    report = lstm_compare.run(handrolled, lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=3, hidden=3)))
    assert not report.findings
    assert_first_divergence_written_as_pandas_does(report, tmp_path)


@pytest.fixture
def fresh_kernels(monkeypatch):
    """The kernels module with nothing compiled or being built (a run's first use)."""
    if not kernels.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "_KERNELS", {})
    monkeypatch.setattr(kernels, "_BUILDS", {})
    monkeypatch.setattr(kernels, "MIN_ELEMENTS", 0)
    return kernels


def test_kernels_built_by_a_separate_process_are_read_back_and_measure_as_numpy_does(fresh_kernels, bug_report):
    problem = lstm_compare.make_problem(bug_report.config.spec).astype(np.float32)
    fresh_kernels.prepare(problem)
    build = fresh_kernels._BUILDS["f"]
    assert build.temporary and build.folder.is_dir()
    assert build.process.wait(timeout=120) == 0
    with fresh_kernels.use(True):
        assert fresh_kernels.enabled(np.ones(1, np.float32))
    stats = [kernel.stats for kernel in fresh_kernels._KERNELS["f"].values()]
    assert all(sum(s.cache_hits.values()) == 1 and not s.cache_misses for s in stats)  # read, not compiled again
    assert not build.folder.exists() and not fresh_kernels._BUILDS  # the run's own folder is gone once read
    assert_kernels_measure_as_numpy_does(np.random.default_rng(3), S=6, A=11, C=7)


def test_a_build_still_running_when_the_measurement_ends_is_stopped_and_its_folder_removed(fresh_kernels, bug_report):
    problem = lstm_compare.make_problem(bug_report.config.spec).astype(np.float32)
    fresh_kernels.prepare(problem)
    build = fresh_kernels._BUILDS["f"]
    with fresh_kernels.use(True):
        pass  # a small run: done before the build is
    assert build.process.poll() is not None and not build.folder.exists() and not fresh_kernels._BUILDS


WITHOUT_NUMBA = """
import sys
sys.modules["numba"] = None  # as if the [fast] extra were not installed: `import numba` raises ImportError
import lstm_compare
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.measuring import kernels
from lstm_compare.output.report import write_divergence_csv

assert not kernels.available()
kernels.MIN_ELEMENTS = 0  # the kernels would be wanted at any size: a build is started, and cannot be read back
bug = next(b for b in CATALOG if b.name == "forget_derivative_uses_c")
config = lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=9, hidden=4, dtype="float32"))
write_divergence_csv(lstm_compare.run(bug.module(), config), sys.argv[1])
"""


def test_without_numba_numpy_measures_with_the_same_bits_as_the_kernels(tmp_path, bug_report):
    if not kernels.compile_now(np.float32):
        pytest.skip("numba is not installed")
    bug = next(b for b in CATALOG if b.name == "forget_derivative_uses_c")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "MIN_ELEMENTS", 0)
        write_divergence_csv(lstm_compare.run(bug.module(), bug_report.config), tmp_path / "kernels.csv")
    subprocess.run([sys.executable, "-c", WITHOUT_NUMBA, str(tmp_path / "numpy.csv")], check=True, cwd=tmp_path)
    kernel_text, numpy_text = (tmp_path / "kernels.csv").read_text(), (tmp_path / "numpy.csv").read_text()
    assert kernel_text.count("\n") > 1000 and "dWf" in kernel_text
    assert numpy_text == kernel_text
