"""The project's exception types.

Library code raises these; only the CLI turns them into one line on stderr and an exit code.
"""


def one_line(msg: str) -> str:
    """A message as the one line the command line prints: every run of whitespace (a newline in
    an ONNX node name, say) one space."""
    return " ".join(msg.split())


class RegionAuditError(Exception):
    """Base class: a problem with the user's input, reported as one line with exit code 2."""

    exit_code = 2


class RejectedModel(RegionAuditError):
    """The ONNX file is broken, or uses something regionaudit cannot analyse exactly."""


class BadData(RegionAuditError):
    """A data, points or segments file that cannot be used as given."""


class BadOption(RegionAuditError):
    """A command-line option or API argument that makes no sense."""


class GateError(RegionAuditError):
    """A gate expression or baseline that cannot be evaluated (unknown path, bad bound)."""


class TooLarge(RegionAuditError):
    """A file, tensor or piece of work beyond a stated limit; refused before memory is touched."""


class TimeLimit(BaseException):
    """`--timeout` expired. A BaseException, like KeyboardInterrupt, so that no library's
    `except Exception` swallows it on its way to the CLI, which reports it with exit code 2."""

    exit_code = 2


class Stopped(BaseException):
    """A signal stopped the run. A BaseException, so that it unwinds every `except Exception`
    (and click's own Ctrl-C handling) to the CLI, removing temporary files on the way."""

    exit_code = 130
    what = "interrupted (SIGINT)"


class Interrupted(Stopped):
    """Ctrl-C: exit code 130 (128 + 2)."""


class Terminated(Stopped):
    """SIGTERM: exit code 143 (128 + 15)."""

    exit_code = 143
    what = "terminated (SIGTERM)"
