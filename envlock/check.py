"""Compare the live environment with a lock, software layers only (``envlock check``).

For CI gates and for "is my venv still what I published?": the hardware
(GPUs, driver, CPU) and the project's git state are expected to differ
between machines, so they are left to ``envlock doctor`` and ``envlock diff``.
"""

from __future__ import annotations

from envlock.diff import diff
from envlock.findings import Finding
from envlock.lockfile import model as m

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Lock sections that describe installed software, in capture's layer names.
SOFTWARE_SECTIONS = ("python", "conda", "cuda", "os", "runtime")
# Fields of a software section that belong to the host: a container shares
# the host's kernel, so a different kernel is not drift of the environment.
HOST_PATHS = frozenset({"os.kernel"})
LABELS = ("the lock", "this environment")


def check_against(
    lock: m.Lock,
    live: m.Lock,
    sections: tuple[str, ...] = SOFTWARE_SECTIONS,
    differing_files: dict[str, tuple[str, ...]] | None = None,
) -> list[Finding]:
    """Drift of ``live`` from ``lock`` in the given software sections (pure)."""
    wanted = tuple(s for s in sections if s in SOFTWARE_SECTIONS)
    findings = diff(lock, live, labels=LABELS, sections=wanted, host=False)
    if "python" in wanted:
        # A version comparison cannot see another build of the same version.
        from envlock.byte_verdicts import byte_findings, byte_verdicts, without_diff_bytes

        findings = without_diff_bytes(findings)
        findings += byte_findings(byte_verdicts(lock.python, live.python), differing_files)
    return [f for f in findings if f.path not in HOST_PATHS]


def byte_summary(lock: m.Lock, live: m.Lock) -> str | None:
    """How many of the lock's Python distributions hold identical bytes here (the report's top line)."""
    from envlock.byte_verdicts import byte_verdicts, summary_line

    return summary_line(byte_verdicts(lock.python, live.python))


def sections_to_capture(lock: m.Lock, sections: tuple[str, ...] = SOFTWARE_SECTIONS) -> tuple[str, ...]:
    """The software layers the lock records: the only ones worth capturing for a check."""
    return tuple(s for s in sections if s in SOFTWARE_SECTIONS and getattr(lock, s) is not None)


def check_live(
    lock: m.Lock,
    python: str | None = None,
    sections: tuple[str, ...] = SOFTWARE_SECTIONS,
    list_differing_files: Callable[[list[m.PythonPackage], str | None], dict[str, tuple[str, ...]]] | None = None,
) -> tuple[list[Finding], m.Lock]:
    """Capture this environment's software layers and compare them with ``lock``.

    ``list_differing_files(packages, python)`` names the files of the locked
    ``packages`` whose bytes differ here (``envlock.byte_files``, which may
    use the network; the command layer passes it in).
    """
    from envlock.capture.collect import capture_lock
    from envlock.errors import UsageError

    layers = sections_to_capture(lock, sections)
    if not layers:
        raise UsageError(
            f"the lock records none of the layers to check ({', '.join(sections)})",
            hint="a lock imported from nvidia-smi or collect_env describes a host: use `envlock doctor` or `envlock diff`",
        )
    live = capture_lock(python, layers=layers)
    differing = None
    if "python" in layers and list_differing_files is not None:
        from envlock.byte_verdicts import byte_verdicts, needing_files

        need = needing_files(byte_verdicts(lock.python, live.python), lock.python)
        differing = list_differing_files(need, python) if need else None
    return check_against(lock, live, layers, differing), live


# envlock.check(...) is also the API function: calling this module calls it (see envlock/__init__.py).
import envlock as _envlock  # noqa: E402

_envlock._callable_module(__name__)
