"""Errors robustkit raises for a user's mistake.

Every error a user can cause (a bad name, a missing file, a bad parameter) is a
:class:`RobustkitError`. Its message is one line that names the problem and the fix; the CLI
prints it without a traceback and exits with status 2, as for click's own usage errors.
Anything else is a bug and keeps its traceback (exit status 1).
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message (its type's name when it has none): how
    a one-line error quotes an exception it turns into one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class RobustkitError(Exception):
    """A user-facing error: one line that says what is wrong and how to fix it."""


class UnknownNameError(RobustkitError, KeyError):
    """A name that no registry holds; the message suggests the closest registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsError(RobustkitError):
    """Weights that cannot be found, downloaded or verified."""


class DataError(RobustkitError):
    """A data set that cannot be found or does not fit the request."""


class InputError(RobustkitError, ValueError):
    """Tensors or parameters an attack or model cannot accept."""


class RunStartedOverError(RobustkitError):
    """A run that another process deleted or started over (``--fresh``) while this one
    computed it: what this process computed is not written into the run stored now, and the
    shards stored for it are not this process's to count."""


class StoreWriteError(RobustkitError):
    """A results store that refuses writes (read-only, a full disk, an I/O error): what it
    holds is kept, and every later write to it would fail alike. ``reason`` says why (``the
    disk is full``) and ``remedy`` what to do before resuming (``free space``), for a message
    that says what a stopped run has stored (the runner's)."""

    def __init__(self, message: str, reason: str = "", remedy: str = "fix that"):
        super().__init__(message)
        self.reason = reason
        self.remedy = remedy
