"""The user-facing errors: each carries one clear sentence and maps to a documented exit code."""

EXIT_MATCH = 0  # every compared tensor matches
EXIT_DIVERGED = 1  # a divergence, a NaN/Inf or an exception in the implementation was found
EXIT_UNUSABLE = 2  # the input cannot be compared: a bad flag, a file that does not import, a wrong interface
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), or a KeyboardInterrupt raised by the user's code
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE: standard output was closed while the tool still wrote to it (`| head`)
EXIT_TERMINATED = 143  # 128 + SIGTERM: the process ends by the signal itself (the shell's 143)

# The table `lstm-compare --help` ends with (README "Exit codes"), in order; one line each.
EXIT_CODES = (
    (EXIT_MATCH, "no divergence: every compared tensor is within tolerance of every reference"),
    (EXIT_DIVERGED, "a divergence, a NaN/Inf, an exception or a time-out in your code (located in the report)"),
    (EXIT_UNUSABLE, "nothing compared: a bad flag, a file that does not import or lacks a function, a problem too "
                    "large (one line on stderr)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (EXIT_OUTPUT_CLOSED, "standard output closed early (| head)"),
    (EXIT_TERMINATED, "terminated (SIGTERM)"),
)


from lstm_compare.lstm.where import Phase


class UsageError(Exception):
    """The implementation or the request cannot be compared at all (exit 2); the message is one sentence."""


class PerExampleGradients(UsageError):
    """A parameter gradient came back with one entry per batch element instead of their sum over the batch."""


class ImplementationRaised(Exception):
    """The implementation raised inside its own code: a located finding, not a crash."""

    def __init__(self, phase: Phase, step: int | None, message: str) -> None:
        super().__init__(message)
        self.phase, self.step, self.message = phase, step, message
