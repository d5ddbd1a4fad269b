"""The one exception tree that reaches users.

The CLI catches ``EnvlockError`` once, prints ``message`` and ``hint`` and exits
with ``exit_code``; nothing else is allowed to escape as a traceback.
"""

from __future__ import annotations


class EnvlockError(Exception):
    """An error a user can act on: what went wrong, and how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(EnvlockError, ValueError):
    """Bad command-line input."""


class LockfileError(EnvlockError, ValueError):
    """A lockfile that cannot be read, parsed or validated.

    ``problems`` lists every problem found, each as ``path: message``.
    """

    def __init__(self, message: str, hint: str | None = None, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            shown = self.problems[:50]
            more = len(self.problems) - len(shown)
            message = message + "\n" + "\n".join(f"  {p}" for p in shown)
            if more:
                message += f"\n  ... and {more} more"
        super().__init__(message, hint)


class FormatError(EnvlockError, ValueError):
    """An imported file (pip freeze, collect_env, conda-lock, ...) that cannot be parsed."""


class EngineError(EnvlockError):
    """The Docker engine is missing, unreachable or failed."""


class ReplayError(EnvlockError):
    """A replay that cannot go on (a plan that cannot be built)."""
