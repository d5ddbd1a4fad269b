"""Replay from a pack: every byte checked first, then the base image loaded, then a build with the network off.

Order matters for an untrusted file: :func:`envlock.pack.format.check_pack`
reads the whole pack (headers, padding, end, each member's sha256) before any
member is extracted, and a pack that fails is refused (exit 2) before its
base image reaches the engine.  Members are extracted into a private
temporary directory (mode 0700) and nowhere else.  The Python layer is
installed from the pack's wheels with ``--no-index``; the OS layer from its
``.deb`` files; a conda layer from its ``conda/`` archives, with the
installer's py-rattler wheel and (for a base without python3) Debian's
python3 from the pack too; the build's network is ``none``, and envlock
itself makes no network call (no index page is read: the pins come from the
pack, and no conda channel is asked).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from envlock.lockfile import model as m
from envlock.pack.format import CheckedPack, PackError, check_pack, extract

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from envlock.resolve import PinSet

BASE_REPOSITORY = "envlock-pack-base"


def open_pack(path: str) -> tuple[CheckedPack, m.Lock]:
    """Check the whole pack and read its lock; ``PackError`` / ``LockfileError`` (exit 2) otherwise."""
    from envlock.lockfile.io import parse_lock

    checked = check_pack(path)
    lock = parse_lock(checked.lock_bytes(), f"{path}:envlock.lock").lock
    if checked.meta.get("lock-fingerprint") != lock.fingerprint:
        raise PackError("its fingerprint is not the one pack.json records", member="envlock.lock")
    return checked, lock


def private_directory() -> str:
    """A new directory only this user can read (tempfile.mkdtemp creates it 0700)."""
    return tempfile.mkdtemp(prefix="envlock-pack-")


def pins_from_pack(lock: m.Lock, wheel_paths: dict[str, str]):
    """The PinSet of the lock's pinned files, each from the pack's wheelhouse (no index is read)."""
    from envlock.replay.conda import pip_layer_lock
    from envlock.resolve import Pin, PinSet, Problem, _kind
    from envlock.wheel_select import target_from_lock

    by_file = {Path(path).name: path for path in wheel_paths.values()}
    pins, problems = [], []
    # What conda installed comes with the pack's conda packages, not as a wheel (as `envlock pack` packed it).
    python_layer = pip_layer_lock(lock) if lock.conda and lock.conda.packages else lock
    for pkg in python_layer.python.packages if python_layer.python else ():
        sha = (pkg.file_sha256 or "").split(":", 1)[-1]
        path = by_file.get(pkg.file or "")
        if path is None or pkg.file is None:
            problems.append(
                Problem(pkg.name, pkg.version, "the pack does not carry its file", fix="pack the lock again")
            )
            continue
        pins.append(Pin(pkg.name, pkg.version, pkg.file, sha, _kind(pkg.file), wheelhouse_file=path))
    return PinSet(pins=tuple(pins), problems=tuple(problems), target=target_from_lock(lock))


def conda_from_pack(lock: m.Lock, extracted: dict[str, str]):
    """The conda layer's files from the pack (None when the lock has no conda packages).

    The archives' hashes are checked again by the installer in the build
    stage, as for a download; what the pack lacks is a finding of the plan.
    """
    from envlock.replay import conda as c
    from envlock.replay.conda import CondaLocal

    if lock.conda is None or not lock.conda.packages:
        return None
    installer_dir = "conda/installer/"
    archives = tuple(
        sorted(
            (name.split("/", 1)[1], path)
            for name, path in extracted.items()
            if name.startswith("conda/") and name.count("/") == 1
        )
    )
    debs = tuple(sorted(path for name, path in extracted.items() if name.startswith(installer_dir)))
    wheel_prefix = f"tools/{c.RATTLER_NAME.replace('-', '_')}-{c.RATTLER_VERSION}-"
    rattler = next((path for name, path in sorted(extracted.items()) if name.startswith(wheel_prefix)), None)
    if rattler is None:
        if archives:
            raise PackError(
                f"carries conda packages but not the {c.RATTLER_NAME} {c.RATTLER_VERSION} wheel that installs them",
                member="pack.json",
            )
        rattler = ""  # nothing to install it with, and nothing to install: the plan names every package
    return CondaLocal(archives=archives, rattler_wheel=rattler, installer_debs=debs)


def load_base_image(engine, checked: CheckedPack, image_path, tag: str) -> str:
    """``docker load`` the pack's base image (``image_path()`` extracts it), check it is the recorded image, tag it."""
    expected = (checked.meta.get("base-image") or {}).get("id")
    if not isinstance(expected, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", expected):
        raise PackError("records no base image id", member="pack.json")
    found = engine.image(expected)
    if found is None:
        # The image id is the digest of its configuration, which names every layer by
        # digest: an engine that has this id has these bytes, and loading is skipped.
        with open(image_path(), "rb") as handle:
            try:
                engine.api.load_image(handle)
            except Exception as exc:  # the engine's own words
                raise PackError(f"the engine cannot load it ({str(exc)[:200]})", member="image/base.tar") from None
        found = engine.image(expected)
    if found is None or found.id != expected:
        raise PackError(f"loading it did not give the recorded image {expected}", member="image/base.tar")
    engine.api.tag(expected, BASE_REPOSITORY, tag)
    return f"{BASE_REPOSITORY}:{tag}"


def replay_pack(path: str, args, progress):
    """Check, load, build offline and verify; the replay outcome (as for a lock) and the lock."""
    from envlock.replay.engine import DockerEngine
    from envlock.replay.orchestrate import ReplayRequest, replay

    checked, lock = open_pack(path)
    progress.step(f"pack checked: {len(checked.members)} members, sha256 {checked.sha256}")
    engine = DockerEngine()
    engine.ping()
    workdir = private_directory()
    try:
        wanted = [mem.name for mem in checked.members if mem.kind in ("wheel", "deb", "tool", "conda")]
        extracted = extract(checked, wanted, workdir)
        image = lambda: extract(checked, ["image/base.tar"], workdir)["image/base.tar"]  # noqa: E731 (only if needed)
        base = load_base_image(engine, checked, image, (lock.fingerprint or "x")[7:19])
        progress.step(f"base image loaded from the pack: {base} ({checked.meta['base-image']['id'][:19]})")
        wheels = {name: p for name, p in extracted.items() if name.startswith("wheels/")}
        debs = tuple(sorted(p for name, p in extracted.items() if name.startswith("debs/")))
        # uv's wheel from the pack: replay installs with it, as online (envlock.replay.uv_tool looks here first).
        tools = tuple(sorted({str(Path(p).parent) for name, p in extracted.items() if name.startswith("tools/")}))
        request = ReplayRequest(
            tag=getattr(args, "tag", None),
            base_image=base,
            network="none",
            builder=getattr(args, "builder", "auto"),
            no_cache=getattr(args, "no_cache", False),
            verify=not getattr(args, "no_verify", False),
            pins=pins_from_pack(lock, wheels),
            local_debs=debs,
            find_links=tools,
            conda_local=conda_from_pack(lock, extracted),
        )
        return replay(lock, request, engine, progress), lock
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def into_venv_from_pack(path: str, run_into_venv: Callable[[m.Lock, PinSet, tuple[str, ...]], int]) -> int:
    """``--into-venv DIR`` from a pack: the Python layer only, from the pack's wheels, no network.

    ``run_into_venv(lock, pins, uv_dirs)`` is the command layer's replay into the venv (it prints the
    report); ``uv_dirs`` hold the pack's uv wheel.
    """
    checked, lock = open_pack(path)
    workdir = private_directory()
    try:
        extracted = extract(checked, [mem.name for mem in checked.members if mem.kind in ("wheel", "tool")], workdir)
        wheels = {name: p for name, p in extracted.items() if name.startswith("wheels/")}
        # uv comes from the pack too (the venv replay looks in these directories first): no network.
        tools = tuple(sorted({str(Path(p).parent) for name, p in extracted.items() if name.startswith("tools/")}))
        return run_into_venv(lock, pins_from_pack(lock, wheels), tools)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def is_pack_path(path: str) -> bool:
    from envlock.pack.format import is_pack

    return os.path.isfile(path) and is_pack(path)
