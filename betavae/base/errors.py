"""Every error betavae raises on purpose, and the one line each is reported in. The bottom layer: it imports
nothing of betavae, and every other module takes its errors from here."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot be used; ``name`` is the argument it came in as, when there is one."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class UsageError(ValueError):
    """A call of the Python API (`betavae.api`) with an argument it cannot take; the message names the argument and
    what it accepts."""


class DataError(RuntimeError):
    """A dataset file or directory that cannot be used, with the reason."""


class RunError(RuntimeError):
    """A run directory or checkpoint that cannot be used, with the reason."""


class DiskFull(RunError):
    """A write that found no space left: names the directory and how much space it needs."""


class Refused(RunError):
    """A run refused before any work: it records nothing, the directory keeps what it holds."""


class SweepRefused(Refused):
    """A job refused for a reason every job of its sweep shares: the sweep stops, in one line."""


class LaunchRefused(SweepRefused):
    """A multirun job that Lightning would start its DDP processes for by re-running the command line."""


class JobStopped(RunError):
    """A job that ended without finishing, its end recorded: ``line`` is what the command prints as it exits."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class Diverged(RunError):
    """Training reached a non-finite loss; the message names the step, the epoch and the term."""


class Terminated(SystemExit):
    """SIGTERM arrived (`timeout`, `kill`, Slurm): the job stops, keeping its last finished epoch's checkpoint."""


def first_line(err: BaseException) -> str:
    """The first non-blank line of an error's message, or its type's name when the message is empty
    (``MemoryError()``): libraries' messages run to several lines, ours are one."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
