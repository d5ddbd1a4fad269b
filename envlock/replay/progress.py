"""What a build says while it runs: kept for reports and failures, shown by whoever listens.

The replay core never writes to the screen.  It hands each line of build
output and each milestone to a :class:`Progress`, which keeps them (the tail
of a failed build goes into the error) and passes them on to a *display*
chosen by the command layer (``envlock.commands.progress``), or to nobody.
"""

from __future__ import annotations

import re
import threading

from envlock.errors import EngineError
from envlock.report import safe

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Mapping
    from typing import Protocol

    class Display(Protocol):
        """Where a Progress sends what it keeps: the command layer's terminal output."""

        def line(self, text: str) -> None: ...  # build output, may be redrawn in place
        def step(self, text: str) -> None: ...  # a milestone that stays on screen
        def debug(self, text: str) -> None: ...  # shown only when the user asked for debugging
        def close(self) -> None: ...  # clear any line drawn in place


# BuildKit's plain output repeats every step's cache key ("#7 sha256:<64 hex>"): noise.
_BUILDKIT_DIGEST_LINE = re.compile(r"#\d+ sha256:[0-9a-f]{64}")


class Progress:
    """Build output and milestones, kept in order; each is also handed to ``display`` when there is one."""

    def __init__(self, display: Display | None = None) -> None:
        self.display = display
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        text = text.rstrip("\r\n")
        if not text.strip() or _BUILDKIT_DIGEST_LINE.fullmatch(text):
            return
        text = safe(text)
        self.lines.append(text)
        if self.display is not None:
            self.display.line(text)

    def step(self, text: str) -> None:
        """A milestone (build started, image built, ...)."""
        if self.display is not None:
            self.display.step(safe(text))

    def debug(self, text: str) -> None:
        """A detail for debugging (the exact command run); kept out of the build log."""
        if self.display is not None:
            self.display.debug(safe(text))

    def close(self) -> None:
        if self.display is not None:
            self.display.close()

    def tail(self, count: int = 25) -> list[str]:
        return self.lines[-count:]


def run_streaming(argv: list[str], env: Mapping[str, str], progress: Progress, timeout: float) -> int:
    """Run a program, feeding each line it prints to ``progress``; its exit status."""
    import shlex
    import subprocess

    progress.debug(f"running {shlex.join(argv)}")
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise EngineError(f"cannot run {argv[0]}: {exc.strerror}") from None
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    with proc:  # closes the pipe whatever happens
        try:
            assert proc.stdout is not None
            for text in proc.stdout:
                progress.line(text)
            return proc.wait()
        finally:
            killer.cancel()
