"""Errors that reach the user as one line (no traceback): mistakes (exit 2) and interrupted runs (128 + signal)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input (config, override, data files, results folder).

    The message is one line naming the field or file, the value, and what is allowed.
    """


class RunInterrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; `signum` gives the exit status 128 + signum."""

    def __init__(self, results_dir: Path, round_: int, signum: int) -> None:
        super().__init__(f"interrupted after round {round_}; resume with: fedref-ray run --resume {results_dir}")
        self.results_dir, self.round, self.signum = results_dir, round_, signum


class EngineFailure(RuntimeError):
    """The engine cannot go on (one line naming who); `results_dir` is set once the run knows its folder,
    so the CLI can say how to resume from the last checkpoint."""

    results_dir: Path | None = None


class EngineTimeout(EngineFailure):
    """A Ray call did not answer in time; the message names who."""


class EngineLost(EngineFailure):
    """An actor the run needs is gone for good (a worker past its restarts, or the server); one line naming it."""
