r"""The command line's on-disk caches of compiled code: JAX's persistent compilation cache and numba's.

A repeated run at the same sizes (what a person debugging does) then skips compiling the JAX reference and the
measurement kernels.  The caches live in one per-user folder, the platform's user cache folder for lstm-compare
(platformdirs: ``$XDG_CACHE_HOME/lstm-compare`` or ``~/.cache/lstm-compare`` on Linux,
``~/Library/Caches/lstm-compare`` on macOS, ``%LOCALAPPDATA%\lstm-compare\Cache`` on Windows), with ``jax/`` and
``numba/`` inside; deleting it is always safe.

Only the ``lstm-compare`` program turns them on (``lstm_compare.frontends.cli.main``), in its own process: importing
this project, ``lstm_compare.run``, the pytest plugin and the tests change no JAX or numba setting.  ``--no-cache`` or
the environment variable ``LSTM_COMPARE_NO_CACHE=1`` turns them off for a run, and so does ``CI=true`` (a CI machine
starts afresh: a cache there is only writes).
"""

import os
import tempfile
from pathlib import Path

import platformdirs

NO_CACHE_VARIABLE = "LSTM_COMPARE_NO_CACHE"
_PROGRAM = False  # set by lstm_compare.frontends.cli.main: this process is the lstm-compare program
_FOLDER: Path | None = None  # the cache folder in use in this process (set by ``enable``)


def cache_dir() -> Path:
    """The per-user folder: the platform's user cache folder for lstm-compare (platformdirs)."""
    return Path(platformdirs.user_cache_dir("lstm-compare", appauthor=False))


def mark_program() -> None:
    """Called by the command line's entry point only: caches may be turned on in this process."""
    global _PROGRAM
    _PROGRAM = True


def wanted(no_cache_flag: bool) -> bool:
    """Whether this run uses the caches: the program, without --no-cache, LSTM_COMPARE_NO_CACHE or CI=true."""
    switched_off = os.environ.get(NO_CACHE_VARIABLE, "").strip() not in ("", "0")
    in_ci = os.environ.get("CI", "").strip().lower() in ("true", "1")
    return _PROGRAM and not no_cache_flag and not switched_off and not in_ci


def enable(jax_too: bool = True) -> Path | None:
    """Use ``cache_dir()`` in this process: JAX's persistent compilation cache now (when ``jax_too``: a run
    without the JAX reference need not import it), numba's when the kernels are first compiled.  Returns it, or
    None where the folder cannot be made or written (then no cache is used: a cache only saves time).

    JAX's thresholds go to zero: this project's compilations take well under JAX's default second each.
    """
    global _FOLDER
    folder = cache_dir()
    if not _writable(folder / "jax") or not _writable(folder / "numba"):
        return None
    _FOLDER = folder
    if jax_too:
        import jax

        jax.config.update("jax_compilation_cache_dir", str(_FOLDER / "jax"))  # type: ignore[no-untyped-call]
        for option, value in (("jax_persistent_cache_min_compile_time_secs", 0.0),
                              ("jax_persistent_cache_min_entry_size_bytes", 0)):
            try:
                jax.config.update(option, value)  # type: ignore[no-untyped-call]
            except (AttributeError, KeyError):  # an older JAX without the option keeps its default
                pass
    return _FOLDER


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists (made if need be) and a file can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".lstm-compare-probe."):
            pass
    except OSError:
        return False
    return True


def numba_cache_dir() -> Path | None:
    """Where numba may keep the compiled kernels: None unless ``enable`` ran in this process."""
    return None if _FOLDER is None else _FOLDER / "numba"
