"""The terminal display of a replay's build: one live line on a terminal, plain lines otherwise.

The command layer owns the screen; the replay core reports through
:class:`envlock.replay.progress.Progress`, which hands lines to this display.
"""

from __future__ import annotations

import os
import shutil
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import TextIO


class TerminalDisplay:
    """Shows build output on ``stream`` (stderr by default).

    On a terminal the last line is redrawn in place (clipped to the width) so
    a long pip install does not scroll the screen away; milestones stay on
    screen.  ``quiet`` shows nothing but debugging details; those appear only
    when ``ENVLOCK_DEBUG`` is set.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self.show_debug = bool(os.environ.get("ENVLOCK_DEBUG"))
        self._drawn = False

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            shown = text if len(text) <= width else text[: width - 1] + "…"
            self.stream.write("\r\x1b[2K" + shown)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, text: str) -> None:
        self.close()
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()

    def debug(self, text: str) -> None:
        if self.show_debug:
            self.close()
            self.stream.write(f"envlock: {text}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False
