"""Run a function that mostly waits for another program on a thread; pick up its answer later.

Capture's own work is Python code that holds the GIL, so probes on threads
take turns rather than run together, and every file read or ``stat`` that
drops the GIL then waits to get it back.  Measured on this project's 2-core
machine (reference env, 48 distributions): the eight probes on eight threads
took 90-120 ms of wall time; one after the other they take 55-60 ms.  So
capture runs its probes in the main thread and keeps threads for what waits
on a child process (the target interpreter, git, ``nvcc --version``): the
child runs on the other core while the main thread works.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from collections.abc import Callable
    from typing import Any


class Background:
    """``function(*args)`` started on a daemon thread; ``result()`` waits and returns or re-raises."""

    __slots__ = ("_thread", "_value", "_error")

    def __init__(self, function: Callable[..., Any], *args: Any, name: str) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        # A daemon thread: an interrupted capture exits without waiting for git.
        self._thread: threading.Thread | None = threading.Thread(
            target=self._work, args=(function, args), name=name, daemon=True
        )
        self._thread.start()

    @classmethod
    def done(cls, value: Any) -> Background:
        """An answer already known (the running interpreter describes itself in-process)."""
        ready = cls.__new__(cls)
        ready._thread = None
        ready._value = value
        ready._error = None
        return ready

    def _work(self, function: Callable[..., Any], args: tuple) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc

    def result(self) -> Any:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
