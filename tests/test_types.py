"""The typed public API as a user's type checker sees it: mypy on a small user file that calls the API (the wheel's
``py.typed`` marker, which makes an installed copy typed (PEP 561), is checked in test_installed.py)."""

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent

USER_FILE = """
import lstm_compare
from lstm_compare import Config, ProblemSpec
from lstm_compare import LstmCompare
from lstm_compare.handrolled import init_params
from lstm_compare.references import torch_lstm

report = lstm_compare.run("my_lstm.py", Config(spec=ProblemSpec(steps=4)))
reveal_type(report)
reveal_type(report.frame())
reveal_type(report.findings[0].step)
reveal_type(torch_lstm.trace(lstm_compare.make_problem(ProblemSpec())).totals.loss)
init_params(3, 5, 1, seed="0")
lstm_compare.run("my_lstm.py", Config(spec=ProblemSpec(steps="4")))
lstm_compare.assert_lstm_matches("my_lstm.py", dtype=64)
Config(modes=("isolate",), convention="pytorch")
reveal_type(lstm_compare.gradcheck("my_lstm.py", steps=3).passed)


def test_mine(lstm_compare: LstmCompare) -> None:
    reveal_type(lstm_compare("my_lstm.py", steps=3, baseline=False))
    lstm_compare("my_lstm.py", stepz=3)
"""


def test_a_users_type_checker_sees_the_public_api_types_and_flags_wrong_arguments(tmp_path):
    user = tmp_path / "user_code.py"
    user.write_text(USER_FILE)
    # The project's own configuration and cache: warm after `make test`'s mypy run, so this takes about a second
    # there (other options would invalidate that cache for every module).
    out, err, status = api.run([str(user), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                                str(ROOT / ".mypy_cache"), "--no-error-summary", "--hide-error-context"])
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if ": error: " in line or "Revealed" in line]
    assert (status, err) == (1, "")
    assert lines == [
        'note: Revealed type is "lstm_compare.modes.records.Report"',
        'note: Revealed type is "pandas.core.frame.DataFrame"',
        'note: Revealed type is "int | None"',
        'note: Revealed type is "float"',
        'error: Argument "seed" to "init_params" has incompatible type "str"; expected "int | None"  [arg-type]',
        'error: Argument "steps" to "ProblemSpec" has incompatible type "str"; expected "int"  [arg-type]',
        'error: Argument "dtype" to "assert_lstm_matches" has incompatible type "Literal[64]"; expected '
        '"Literal[\'float64\', \'float32\']"  [arg-type]',
        'error: Argument "modes" to "Config" has incompatible type "tuple[Literal[\'isolate\']]"; expected '
        '"tuple[Literal[\'isolated\', \'chained\', \'sequence\'], ...]"  [arg-type]',
        'error: Argument "convention" to "Config" has incompatible type "Literal[\'pytorch\']"; expected '
        '"Literal[\'auto\', \'declared\', \'question\', \'cs231n\', \'coursera\', \'karpathy\']"  [arg-type]',
        'note: Revealed type is "bool"',
        'note: Revealed type is "lstm_compare.modes.records.Report"',
        'error: Unexpected keyword argument "stepz" for "__call__" of "LstmCompare"; did you mean "steps"?  '
        '[call-arg]',
    ]
