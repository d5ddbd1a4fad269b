"""Prove a replay: capture inside the built image and compare with the lock.

envlock runs inside the image without becoming part of what it captures:

* its own modules (and the few pure-Python libraries capture needs) are
  copied into the container at ``/opt/envlock-probe`` just before it starts,
  so they are in the throwaway container layer, never in the image, and never
  in a ``site-packages`` that capture scans;
* it runs under the image's own interpreter with ``-I -S``: no ``PYTHONPATH``,
  no user site, no ``site-packages`` on ``sys.path``, so nothing installed in
  the replayed environment can shadow envlock's imports and envlock's copies
  cannot shadow the environment's; the boot line puts only
  ``/opt/envlock-probe`` in front of the standard library;
* it captures ``--python`` of the replayed interpreter, so the packages are read
  from that environment's metadata, as on the original machine;
* the container has no network (capture never uses one).

The image is compared with the lock layer by layer, scoped to what a replay
rebuilds (the OS layer: the lock's manually installed packages; hardware is
the host's business), and the hardware the image will run on is checked
against the lock separately as *host findings*.
"""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

from envlock import records
from envlock.errors import ReplayError
from envlock.findings import (
    EXACT,
    INFO,
    Finding,
    sort_findings,
)
from envlock.lockfile import model as m
from envlock.names import canonical_name
from envlock.records import record

PROBE_DIR = "/opt/envlock-probe"
# Pure-Python libraries envlock's capture imports (tomli only below 3.11).
PROBE_DEPENDENCIES = ("packaging", "tomli_w", "pynvml", "tomli")

# Runs under the image's interpreter with -I -S.  Kept valid on old Pythons so
# that a too-old interpreter gets a clear message instead of a SyntaxError.
_BOOT = (
    "import sys\n"
    "if sys.version_info < (3, 10):\n"
    "    sys.stderr.write('envlock-probe: needs Python 3.10+, the image has %d.%d\\n' % sys.version_info[:2])\n"
    "    sys.exit(3)\n"
    f"sys.path.insert(0, {PROBE_DIR!r})\n"
    "import shutil\n"
    "target = shutil.which(sys.argv[1]) or sys.argv[1]\n"
    "from envlock.cli import main\n"
    f"sys.exit(main(['capture', '--python', target, '--json', '--project', {PROBE_DIR!r}]))\n"
)

# The lock sections an image build reproduces (hardware and git are not the image's).
IMAGE_SECTIONS = ("cuda", "runtime", "python", "conda", "os")


@record
class VerifyReport:
    image: str
    findings: tuple[Finding, ...]  # what the image does not reproduce
    host_findings: tuple[Finding, ...]  # this host's hardware against the lock's
    notes: tuple[str, ...] = ()
    captured: m.Lock | None = None
    host_rows: tuple[tuple[str, str], ...] = ()
    # "12 of 14 Python distributions byte-identical (...)": the report's top line.
    byte_summary: str | None = None

    @property
    def mismatches(self) -> list[Finding]:
        """Findings that keep the replay from being exact (info notes do not)."""
        return [f for f in (*self.findings, *self.host_findings) if f.status != EXACT and f.severity != INFO]

    @property
    def exit_code(self) -> int:
        return 1 if self.mismatches else 0


# --- the probe bundle -----------------------------------------------------------


def probe_bundle() -> bytes:
    """A tar (rooted at /) with envlock and its capture dependencies under PROBE_DIR.

    Deterministic (sorted, fixed metadata), pure Python (no ``__pycache__``,
    no compiled modules), so it runs under whatever interpreter the image has.
    """
    import envlock

    sources: list[tuple[Path, str]] = [(Path(envlock.__file__).resolve().parent, "envlock")]
    for name in PROBE_DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:  # a package (its origin may be a compiled __init__)
            sources.append((Path(list(spec.submodule_search_locations)[0]).resolve(), name))
        elif spec.origin and spec.origin.endswith(".py"):
            sources.append((Path(spec.origin).resolve(), f"{name}.py"))
    buffer = io.BytesIO()
    prefix = PROBE_DIR.strip("/")
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in _parents(prefix):
            tar.addfile(_dir_info(directory))
        for source, name in sources:
            if source.is_file():
                _add_file(tar, source, f"{prefix}/{name}")
                continue
            tar.addfile(_dir_info(f"{prefix}/{name}"))
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                # Pure Python only: the image's interpreter may be another
                # version (this host's tomli is a mypyc build for cp311).
                if "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo", ".so", ".pyd") or path.is_symlink():
                    continue
                arcname = f"{prefix}/{name}/{rel.as_posix()}"
                if path.is_dir():
                    tar.addfile(_dir_info(arcname))
                elif path.is_file():
                    _add_file(tar, path, arcname)
    return buffer.getvalue()


def _parents(prefix: str) -> list[str]:
    parts = prefix.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 946684800
    return info


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    data = path.read_bytes()
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 946684800
    tar.addfile(info, io.BytesIO(data))


# --- capturing inside an image ----------------------------------------------------


def capture_key(image_id: str, bundle: bytes, python: str, runner: str | None) -> str:
    """What a capture inside an image depends on: the image's bytes (its id), envlock's probe, the interpreter."""
    import hashlib

    digest = hashlib.sha256(f"{image_id}\0{python}\0{runner or ''}\0".encode())
    digest.update(hashlib.sha256(bundle).digest())
    return digest.hexdigest()


def capture_image(
    engine, image: str, python: str = "python", runner: str | None = None, timeout: float = 300, reuse: bool = False
) -> tuple[m.Lock, bool]:
    """Run envlock's capture inside ``image`` against ``python``: the lock it saw, and whether it was reused.

    With ``reuse``, an earlier capture of the same image id by the same probe
    is read from envlock's cache instead of starting a container: an image id
    is the digest of the image's configuration, which names every layer's
    digest, so the same id is the same bytes and the capture would see the same.
    """
    from envlock.capture import cache
    from envlock.errors import EngineError
    from envlock.lockfile.checks import validate_lock_data

    bundle = probe_bundle()
    cache_name = None
    if reuse and cache.enabled():
        info = engine.image(image)
        if info is not None:
            cache_name = f"image-captures/{capture_key(info.id, bundle, python, runner)}.json"
            stored = cache.load_json(cache_name)
            if stored is not None:
                try:
                    return validate_lock_data(stored), True
                except Exception:  # a damaged cache entry is no entry: capture again
                    pass
    command = [runner or python, "-I", "-S", "-c", _BOOT, python]
    try:
        result = engine.run(image, command, files=bundle, files_at="/", network=False, timeout=timeout)
    except EngineError as exc:
        if "executable file not found" in exc.message or "no such file" in exc.message.lower():
            raise ReplayError(
                f"{image}: there is no {runner or python!r} to run envlock's capture with",
                hint="pass --python PATH with the image's interpreter (envlock verify IMAGE --python /opt/venv/bin/python)",
            ) from None
        raise
    stderr = result.stderr.decode(errors="replace").strip()
    if result.timed_out:
        raise ReplayError(f"capture inside {image} did not finish in {timeout:.0f} s")
    if result.exit_code == 3 and "needs Python 3.10+" in stderr:
        raise ReplayError(
            f"{image}: {stderr.splitlines()[-1].replace('envlock-probe: ', 'envlock ')}",
            hint="verify runs envlock inside the image; give it a Python 3.10+ interpreter with --runner PATH",
        )
    if result.exit_code != 0:
        last = "\n".join(stderr.splitlines()[-8:])
        raise ReplayError(f"capture inside {image} failed (exit {result.exit_code}):\n{last}")
    try:
        data = json.loads(result.stdout.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"capture inside {image} printed something that is not JSON ({exc})") from None
    # The image is not trusted more than a lockfile: validate it the same way.
    captured = validate_lock_data(data)
    if cache_name is not None:
        cache.save_json(cache_name, data)
    return captured, False


# --- comparing ---------------------------------------------------------------------


def scope_to_image(locked: m.Lock, captured: m.Lock) -> tuple[m.Lock, m.Lock]:
    """Both locks reduced to what an image build reproduces.

    Hardware and the kernel belong to the host (checked by ``host_findings``),
    git state to the project.  Of the OS packages only those installed by
    hand on the original machine are replayed; the rest come with the base
    image and are compared only through them.
    """

    def trim(lock: m.Lock, os_section: m.OsSection | None) -> m.Lock:
        return records.replace(
            lock,
            nvidia=None,
            cpu=None,
            project=None,
            os=os_section,
            capture_warnings=(),
            created_at=None,
            created_by=None,
            fingerprint=None,
            origin=None,
        )

    locked_os = captured_os = None
    if locked.os is not None:
        manual = tuple(p for p in locked.os.packages if p.manual)
        wanted = {p.name for p in manual}
        locked_os = records.replace(locked.os, kernel=None, packages=manual)
        if captured.os is not None:
            captured_os = records.replace(
                captured.os, kernel=None, packages=tuple(p for p in captured.os.packages if p.name in wanted)
            )
    python = without_unlisted_conda(locked, installed_from_pins(locked.python, captured.python))
    captured = records.replace(captured, python=python)
    return trim(locked, locked_os), trim(captured, captured_os)


def without_unlisted_conda(locked: m.Lock, captured: m.PythonSection | None) -> m.PythonSection | None:
    """``captured`` without the Python distributions conda installed that the lock's Python layer does not list.

    A lock imported from conda-lock or an explicit list names conda's Python
    libraries only as conda packages (the conda layer compares them by name,
    version, build and sha256); the image's capture also finds them in
    site-packages, where they would read as "only in image".
    """
    from envlock.replay.conda import conda_owned

    if locked.conda is None or not locked.conda.packages or captured is None:
        return captured
    # Not matched by name: a conda package's name is not always its distribution's (pytorch ships torch).
    listed = {canonical_name(p.name) for p in (locked.python.packages if locked.python else ())}
    kept = tuple(p for p in captured.packages if not (conda_owned(p) and canonical_name(p.name) not in listed))
    return records.replace(captured, packages=kept) if len(kept) != len(captured.packages) else captured


def installed_from_pins(locked: m.PythonSection | None, captured: m.PythonSection | None):
    """``captured`` with each pinned file the replay installed recorded as the lock's index package.

    Replay installs a pinned file by its URL (or from the build's wheelhouse),
    so the installer writes a PEP 610 ``direct_url.json`` and capture reads
    ``source = "url"``; the file is the one the lock pinned from its index, and
    the byte verdicts prove its content.  Anything else is left as captured.
    """
    if locked is None or captured is None:
        return captured
    pins = {canonical_name(p.name): p for p in locked.packages if p.source == "index" and p.file_url and p.file}

    def as_locked(pkg: m.PythonPackage) -> m.PythonPackage:
        pin = pins.get(canonical_name(pkg.name))
        if pin is None or pkg.source != "url" or pkg.version != pin.version or not pkg.url:
            return pkg
        from_wheelhouse = pkg.url.startswith("file://") and pkg.url.rsplit("/", 1)[-1] == pin.file
        if pkg.url != pin.file_url and not from_wheelhouse:
            return pkg
        return records.replace(pkg, source=pin.source, url=pin.url, archive_hash=pin.archive_hash)

    return records.replace(captured, packages=tuple(as_locked(p) for p in captured.packages))


def compare_image(locked: m.Lock, captured: m.Lock) -> list[Finding]:
    """Findings for what the image does not reproduce: the lock's own diff, scoped to what an image holds."""
    from envlock.diff import diff

    want, got = scope_to_image(locked, captured)
    found = diff(want, got, ("lock", "image"), sections=IMAGE_SECTIONS, host=False)
    return [f for f in found if f.status != EXACT]


# --- the host ------------------------------------------------------------------------


def capture_host() -> m.Lock:
    """This machine's hardware (driver, GPUs, CPU), captured the same way as on the original one."""
    from envlock.capture.collect import capture_lock

    return capture_lock(None, layers=("nvidia", "cpu"))


def host_findings(locked: m.Lock, host: m.Lock) -> list[Finding]:
    """``host`` (this machine's hardware with the image's userland) against the lock, by the compat rules."""
    from envlock.compat.rules import host_findings as rules_host_findings

    return [f for f in rules_host_findings(locked, host) if f.status != EXACT]


def _gpu_counts(section: m.NvidiaSection | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for gpu in section.gpus if section else ():
        counts[gpu.name] = counts.get(gpu.name, 0) + 1
    return counts


def _show_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n}× {name}" for name, n in sorted(counts.items())) or "none"


# --- the report -------------------------------------------------------------------------


def finding_place(item: Finding) -> str:
    """One key per place, whoever reported it.

    The plan writes ``python.packages[PyYAML]``, ``os.packages[jq]`` and
    ``cuda.cudart``; the diff writes ``python.packages[pyyaml]``,
    ``os.packages[jq:amd64]`` and ``cuda.components[cudart]``.
    """
    import re

    path = item.path
    found = re.fullmatch(r"python\.packages\[([^\]]+)\](.*)", path)
    if found:
        return f"python.packages[{canonical_name(found.group(1))}]{found.group(2)}"
    found = re.fullmatch(r"os\.packages\[([^\]:]+)(?::[a-z0-9-]+)?\](.*)", path)
    if found:
        return f"os.packages[{found.group(1)}]{found.group(2)}"
    found = re.fullmatch(r"cuda\.components\[([^\]]+)\](.*)", path)
    if found:
        return f"cuda.{found.group(1)}{found.group(2)}"
    return path


def verify_image(
    engine,
    image: str,
    locked: m.Lock,
    *,
    python: str = "python",
    runner: str | None = None,
    host: m.Lock | None = None,
    reuse: bool = False,
) -> VerifyReport:
    """Capture inside ``image``, compare with ``locked``, and check this host's hardware.

    ``reuse``: an earlier capture of the same image id may stand in (see ``capture_image``).
    """
    captured, reused = capture_image(engine, image, python=python, runner=runner, reuse=reuse)
    findings = compare_image(locked, captured)
    from envlock.byte_verdicts import byte_findings, byte_verdicts, needing_files, summary_line, without_diff_bytes

    verdicts = byte_verdicts(locked.python, captured.python)
    need = needing_files(verdicts, locked.python)
    differing = None
    if need:
        from envlock.byte_files import files_that_differ, read_records_in_image

        differing = files_that_differ(need, read_records_in_image(engine, image, python))
    findings = [*without_diff_bytes(findings), *byte_findings(verdicts, differing)]
    host_lock = host if host is not None else capture_host()
    # What the locked software will run on: this host's driver, GPUs and CPU
    # with the image's own userland (its glibc, libraries and packages).
    running = records.replace(captured, nvidia=host_lock.nvidia, cpu=host_lock.cpu)
    hardware = host_findings(locked, running)
    notes = ("the capture inside the image was reused: same image id as an earlier verification",) if reused else ()
    return VerifyReport(
        image=image,
        notes=notes,
        findings=tuple(sort_findings(findings)),
        host_findings=tuple(sort_findings(hardware)),
        captured=captured,
        host_rows=tuple(host_summary(host_lock)),
        byte_summary=summary_line(verdicts),
    )


def host_summary(host: m.Lock) -> list[tuple[str, str]]:
    """What this host offers, for the report: driver, GPUs, CPU ISA flags."""
    rows = []
    nv = host.nvidia
    if nv is None or not nv.driver_present:
        rows.append(("NVIDIA driver", "absent"))
    else:
        rows.append(("NVIDIA driver", f"{nv.driver_version or '?'} (CUDA {nv.cuda_driver_version or '?'})"))
    rows.append(("GPUs", _show_counts(_gpu_counts(nv)) if nv else "none"))
    if host.cpu is not None:
        rows.append(("CPU", host.cpu.model_name or "?"))
        rows.append(("CPU ISA flags", " ".join(sorted(host.cpu.flags)) or "none recorded"))
    return rows
