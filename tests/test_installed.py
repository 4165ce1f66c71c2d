"""The wheel, installed the way a user installs it, used from a folder outside the repository.

The wheel is built from a copy of the project's files and installed, not editable, into a throw-away virtual
environment whose dependencies come from ``.venv`` (a ``.pth`` line pointing at a folder of links to ``.venv``'s
site-packages, without this checkout's editable install), so that what is under test is the wheel's own files.
From there: the command line on a correct and on a buggy cs231n file, ``--version``, the API from a script named
``compare.py``, pytest in a project with its own ``tests/compare.py`` helper, and an unrelated pytest session.
"""

import inspect
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import lstm_compare.handrolled.cs231n_lstm
from lstm_compare.catalogs.conventions import CONVENTION_CATALOG

ROOT = Path(__file__).resolve().parent.parent
CS231N = inspect.getsource(lstm_compare.handrolled.cs231n_lstm)
CS231N_BUG = next(bug for bug in CONVENTION_CATALOG if bug.name == "cs231n_forget_derivative_missing_prev_c")
FAST = ["--steps", "4", "--reference", "torch"]  # what every check needs of the references, and no more

USERS_SCRIPT = """
import lstm_compare

report = lstm_compare.run("my_lstm.py", lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=4),
                                                            references=["torch"], modes=["isolated"]))
assert not report.diverged, report
print("compare.py:", repr(report).splitlines()[0])
"""
USERS_HELPER = """
def close_enough(a, b):
    return abs(a - b) < 1e-9
"""
USERS_TESTS = """
import pytest
from compare import close_enough  # the project's own tests/compare.py

from lstm_compare import assert_lstm_matches


def test_helper_is_the_projects_own():
    assert close_enough(1.0, 1.0 + 1e-12)


def test_with_the_fixture(lstm_compare):
    lstm_compare("../my_lstm.py", steps=4, references=["torch"], modes=["isolated"])


def test_with_the_assertion():
    assert_lstm_matches("../my_lstm.py", steps=4, references=["torch"], modes=["isolated"])
    with pytest.raises(AssertionError, match="gate f"):
        assert_lstm_matches("../buggy_lstm.py", steps=4, references=["torch"], modes=["isolated"])
"""
UNRELATED_TEST = """
import sys


def test_the_plugin_loaded_and_imported_nothing_heavy(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("lstm_compare")
    assert not {"numpy", "torch", "jax", "pandas"} & set(sys.modules)
    assert not [m for m in sys.modules if m.startswith("lstm_compare.") and m != "lstm_compare.pytest_plugin"]
"""
LOAD_TIME = ("import time, pytest; start = time.perf_counter(); import lstm_compare.pytest_plugin; "
             "print(f'{(time.perf_counter() - start) * 1000:.2f}')")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the project's files (no build folder or egg-info left in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(ROOT / "lstm_compare", source / "lstm_compare", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--disable-pip-version-check", "--wheel-dir", str(dist), str(source)],
                   check=True, capture_output=True)
    (path,) = dist.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(python, folder of its scripts, a working folder outside the repository) of a fresh environment with the
    wheel installed."""
    home = tmp_path_factory.mktemp("installed")
    env = home / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    packages = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    deps = home / "deps"  # .venv's packages, without this checkout's editable install
    deps.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        if not entry.name.startswith(("lstm_compare", "lstm-compare", "__editable__", "_lstm_compare")):
            (deps / entry.name).symlink_to(entry)
    (packages / "dependencies-from-dotvenv.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", "--disable-pip-version-check", str(wheel)], check=True, capture_output=True)
    work = home / "work"
    work.mkdir()
    (work / "my_lstm.py").write_text(CS231N)
    (work / "buggy_lstm.py").write_text(CS231N_BUG.source())
    return python, env / "bin", work


def run(*argv, cwd):
    """A process outside the repository, with no trace of this checkout in its environment."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_the_wheel_holds_every_module_and_only_the_lstm_compare_import_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/RECORD"))
    top = zipfile.ZipFile(wheel).read(f"{info}/top_level.txt").decode().split()
    assert top == ["lstm_compare"]
    assert {name.split("/")[0] for name in names} == {"lstm_compare", info}
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "lstm_compare").rglob("*.py")}
    assert modules <= set(names) and "lstm_compare/py.typed" in names
    assert len(modules) > 70  # every subpackage: conventions/, commands/, ...


def test_the_installed_command_line_version_and_a_correct_and_a_buggy_file(installed):
    python, scripts, work = installed
    version = run(scripts / "lstm-compare", "--version", cwd=work)
    assert (version.returncode, version.stdout) == (0, f"lstm-compare {lstm_compare.__version__}\n")
    correct = run(scripts / "lstm-compare", "report", "--impl", "my_lstm.py", *FAST, cwd=work)
    assert correct.returncode == 0, correct.stderr
    assert correct.stdout.startswith("lstm-compare: my_lstm.py against torch (T=4 ")
    buggy = run(scripts / "lstm-compare", "report", "--impl", "buggy_lstm.py", *FAST, "--out", "bug", cwd=work)
    assert buggy.returncode == 1, buggy.stderr
    assert "DIVERGED" in buggy.stdout and "gate f, dWf (yours: dWx" in buggy.stdout
    imported = run(python, "-c", "import lstm_compare.frontends.cli as m; print(m.__file__)", cwd=work).stdout
    assert Path(imported).is_relative_to(python.parent.parent) and not Path(imported).is_relative_to(ROOT)


def test_a_users_script_named_compare_py_uses_the_api(installed):
    python, _, work = installed
    (work / "compare.py").write_text(USERS_SCRIPT)
    result = run(python, "compare.py", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("compare.py: <lstm_compare.Report my_lstm.py against torch (T=4 ")


def test_pytest_in_a_project_with_its_own_tests_compare_py(installed):
    python, _, work = installed
    tests = work / "project" / "tests"
    tests.mkdir(parents=True)
    (tests / "compare.py").write_text(USERS_HELPER)
    (tests / "test_lstm.py").write_text(USERS_TESTS)
    result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=work / "project")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed" in result.stdout


def test_an_unrelated_pytest_session_loads_the_plugin_for_nothing(installed):
    python, _, work = installed
    (work / "unrelated").mkdir()
    (work / "unrelated" / "test_other.py").write_text(UNRELATED_TEST)
    result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=work / "unrelated")
    assert result.returncode == 0, result.stdout[-3000:]
    times = sorted(float(run(python, "-c", LOAD_TIME, cwd=work).stdout) for _ in range(3))
    print(f"the plugin's load time in a pytest process: {times[1]:.2f} ms (median of 3)")
    assert times[1] < 50
