"""Which file of a release fits: wheel tags of a target interpreter, and of an installed artifact.

Two questions, both pure:

- for a lock without artifact facts, the best file for the interpreter and
  platform it was captured on (:func:`choose_file`, as pip would rank them);
- for a lock with them, the file whose tags and build tag are the ones the
  installed distribution's ``WHEEL`` file records (:func:`match_installed`):
  that file, not today's best, is what was installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from envlock.index_client import IndexFile
from envlock.lockfile import model as m
from envlock.records import record
from envlock.versions import major_minor


@record
class Target:
    """The interpreter and platform the files are chosen for."""

    python_version: tuple[int, int]
    interpreter: str  # "cp311", "pp310"
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.platforms[:2]) + (", ..." if len(self.platforms) > 2 else "")
        return f"{self.interpreter} ({'/'.join(self.abis) or 'no abi'}) on {shown}"


# --- targets ---------------------------------------------------------------------

_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def _linux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """manylinux tags this glibc can run, newest first, then the plain linux tag (PEP 600)."""
    out = []
    major, minor = glibc
    floor = 17 if arch not in ("x86_64", "i686") else 5
    for m_minor in range(minor, floor - 1, -1):
        out.append(f"manylinux_{major}_{m_minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((major, m_minor))
        if legacy and (arch in ("x86_64", "i686") or legacy == "manylinux2014"):
            out.append(f"{legacy}_{arch}")
    out.append(f"linux_{arch}")
    return out


def target_from_lock(lock: m.Lock) -> Target:
    """The interpreter and platform a lock was captured on, as wheel tags.

    Missing facts fall back to this machine's interpreter; the caller can see
    which by comparing with :func:`running_target`.
    """
    from packaging import tags

    python = lock.python
    fallback = running_target()
    if python is None:
        return fallback
    version = major_minor(python.version) or fallback.python_version
    impl = (python.implementation or "cpython").lower()
    prefix = {"cpython": "cp", "cp": "cp", "pypy": "pp", "pp": "pp"}.get(impl, "cp")
    interpreter = f"{prefix}{version[0]}{version[1]}"
    abi = _abi_from_text(python.abi_tag, prefix, version)
    abis = (abi,) if abi else ()
    platform = (python.platform_tag or "").replace("-", "_").replace(".", "_")
    platforms: list[str]
    linux = re.fullmatch(r"(?:linux|manylinux_([0-9]+)_([0-9]+)|manylinux[0-9]+)_([a-z0-9_]+)", platform)
    if linux:
        arch = linux.group(3)
        glibc = None
        if linux.group(1):
            glibc = (int(linux.group(1)), int(linux.group(2)))
        if lock.os is not None and lock.os.glibc:
            glibc = major_minor(lock.os.glibc) or glibc
        platforms = _linux_platforms(arch, glibc or (2, 17))
    elif platform.startswith("macosx_"):
        parts = platform.split("_")
        try:
            mac_version = (int(parts[1]), int(parts[2]) if len(parts) > 3 else 0)
            arch = "_".join(parts[3:]) if len(parts) > 3 else parts[-1]
            platforms = list(tags.mac_platforms(mac_version, arch))
        except (ValueError, IndexError):
            platforms = [platform]
    elif platform:
        platforms = [platform]
    else:
        platforms = list(fallback.platforms)
    return Target(version, interpreter, abis, tuple(platforms))


def _abi_from_text(text: str | None, prefix: str, version: tuple[int, int]) -> str | None:
    if not text:
        return f"{prefix}{version[0]}{version[1]}" if prefix == "cp" else None
    # sysconfig SOABI ("cpython-311-x86_64-linux-gnu") or a wheel tag ("cp311").
    soabi = re.fullmatch(r"cpython-([0-9])([0-9]+)(t?)(d?)-.*", text)
    if soabi:
        return f"cp{soabi.group(1)}{soabi.group(2)}{soabi.group(3)}{soabi.group(4)}"
    return text.replace("-", "_").replace(".", "_")


def running_target() -> Target:
    """This interpreter's tags (used when a lock does not say)."""
    import sys

    from packaging import tags

    ordered = list(tags.sys_tags())
    platforms: list[str] = []
    abis: list[str] = []
    for tag in ordered:
        if tag.platform not in platforms and tag.platform != "any":
            platforms.append(tag.platform)
        if tag.abi not in abis and tag.abi not in ("none", "abi3"):
            abis.append(tag.abi)
    prefix = "pp" if sys.implementation.name == "pypy" else "cp"
    return Target(
        sys.version_info[:2], f"{prefix}{sys.version_info[0]}{sys.version_info[1]}", tuple(abis), tuple(platforms)
    )


def target_tags(target: Target) -> dict[object, int]:
    """Every tag the target accepts, mapped to its preference (lower is better)."""
    from packaging import tags

    ordered: list = []
    if target.interpreter.startswith("cp"):
        ordered.extend(tags.cpython_tags(target.python_version, list(target.abis) or None, list(target.platforms)))
    else:
        ordered.extend(tags.generic_tags(target.interpreter, list(target.abis) or None, list(target.platforms)))
    ordered.extend(tags.compatible_tags(target.python_version, target.interpreter, list(target.platforms)))
    ranks: dict[object, int] = {}
    for i, tag in enumerate(ordered):
        ranks.setdefault(tag, i)
    return ranks


# --- choosing a file -----------------------------------------------------------------


_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,250}")


def _file_identity(filename: str) -> tuple[str, object, str, frozenset] | None:
    """(normalised name, Version, kind, tags) for a wheel or sdist filename, or None.

    A name with a path separator or shell-significant character is never a
    distribution file (it would escape the build context when copied).
    """
    if not _SAFE_FILENAME.fullmatch(filename):
        return None
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            name, version, _build, file_tags = parse_wheel_filename(filename)
            return (name, version, "wheel", file_tags)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return (name, version, "sdist", frozenset())
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return None


def choose_file(
    files: Iterable[IndexFile], name: str, version: str, target: Target, ranks: dict[object, int]
) -> tuple[IndexFile | None, str]:
    """The best file for ``name==version`` on ``target``, or None and why not.

    Wheels compatible with the target win, best tag first; an sdist is the
    last resort.  Files whose Requires-Python excludes the target are skipped.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    try:
        wanted = Version(version)
    except InvalidVersion:
        return None, f"{version!r} is not a PEP 440 version, so no index can serve it"
    norm = canonicalize_name(name)
    target_python = "{}.{}".format(*target.python_version)
    best: tuple[int, IndexFile] | None = None
    sdist: IndexFile | None = None
    same_version: list[IndexFile] = []
    for item in files:
        ident = _file_identity(item.filename)
        if ident is None or ident[0] != norm or ident[1] != wanted:
            continue
        same_version.append(item)
        if item.requires_python:
            try:
                if not SpecifierSet(item.requires_python).contains(
                    target_python + ".0", prereleases=True
                ) and not SpecifierSet(item.requires_python).contains(target_python, prereleases=True):
                    continue
            except InvalidSpecifier:
                pass
        if ident[2] == "sdist":
            if sdist is None or (sdist.filename.endswith(".zip") and item.filename.endswith(".tar.gz")):
                sdist = item
            continue
        rank = min((ranks[t] for t in ident[3] if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, item)
    if best is not None:
        return best[1], ""
    if sdist is not None:
        return sdist, ""
    if not same_version:
        return None, "no such version"
    shown = ", ".join(sorted(f.filename for f in same_version)[:4])
    return None, f"no file for {target.describe()} (the index has: {shown}{', ...' if len(same_version) > 4 else ''})"


def _kind(filename: str) -> str:
    return "wheel" if filename.endswith(".whl") else "sdist"


# --- the installed artifact's file ---------------------------------------------------

# PEP 600: the legacy manylinux names are aliases of glibc floors.
_MANYLINUX_ALIASES = {
    "manylinux1": "manylinux_2_5",
    "manylinux2010": "manylinux_2_12",
    "manylinux2014": "manylinux_2_17",
}


def canonical_tag(tag: str) -> str:
    """A single tag with a legacy manylinux platform written as its PEP 600 alias (pure)."""
    interpreter, _, rest = tag.partition("-")
    abi, _, platform = rest.partition("-")
    for legacy, alias in _MANYLINUX_ALIASES.items():
        if platform.startswith(legacy + "_"):
            platform = alias + platform[len(legacy) :]
            break
    return f"{interpreter}-{abi}-{platform}"


def _wheel_facts(filename: str) -> tuple[str, object, str, frozenset[str]] | None:
    """(normalised name, Version, build tag or "", expanded tags) of a wheel file name, or None."""
    if not filename.endswith(".whl") or not _SAFE_FILENAME.fullmatch(filename):
        return None
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, build, file_tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        return None
    build_text = f"{build[0]}{build[1]}" if build else ""
    return name, version, build_text, frozenset(str(t) for t in file_tags)


def match_installed(
    files: Iterable[IndexFile], name: str, version: str, wheel_tags: Iterable[str], build_tag: str | None
) -> tuple[IndexFile | None, str, str | None]:
    """The file that was installed: the wheel of ``name==version`` whose tags and build tag are the
    installed ``WHEEL`` file's.  Returns (file or None, why none, why this one when others were there).

    A file's tags must equal the installed set (after writing legacy manylinux
    names as their PEP 600 aliases: auditwheel may list both in one place and
    not the other); a file whose tags only overlap is taken when nothing
    equals, and said so.  A build-tagged re-upload is a different file, though
    pip would prefer it.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    try:
        wanted_version = Version(version)
    except InvalidVersion:
        return None, f"{version!r} is not a PEP 440 version, so no index can serve it", None
    norm = canonicalize_name(name)
    wanted = frozenset(wheel_tags)
    wanted_alias = frozenset(canonical_tag(t) for t in wanted)
    build = build_tag or ""
    exact: list[IndexFile] = []
    alias: list[IndexFile] = []
    overlap: list[IndexFile] = []
    same_version: list[str] = []
    other_builds: list[str] = []
    sdist: IndexFile | None = None
    for item in files:
        facts = _wheel_facts(item.filename)
        if facts is None:
            ident = _file_identity(item.filename)
            if ident and ident[0] == norm and ident[1] == wanted_version and ident[2] == "sdist":
                same_version.append(item.filename)
                sdist = sdist or item
            continue
        if facts[0] != norm or facts[1] != wanted_version:
            continue
        same_version.append(item.filename)
        if facts[2] != build:
            if facts[3] & wanted or frozenset(canonical_tag(t) for t in facts[3]) & wanted_alias:
                other_builds.append(item.filename)
            continue
        if facts[3] == wanted:
            exact.append(item)
        elif frozenset(canonical_tag(t) for t in facts[3]) == wanted_alias:
            alias.append(item)
        elif facts[3] & wanted or frozenset(canonical_tag(t) for t in facts[3]) & wanted_alias:
            overlap.append(item)
    shown_tags = ", ".join(sorted(wanted)) + (f", build {build}" if build else ", no build tag")
    for group, how in (
        (exact, "its tags and build tag are the installed WHEEL's"),
        (alias, "its tags are the installed WHEEL's, up to manylinux aliases"),
        (overlap, "its tags overlap the installed WHEEL's (no file has exactly them)"),
    ):
        if group:
            chosen = sorted(group, key=lambda f: f.filename)[0]
            others = [f for f in same_version if f != chosen.filename]
            why = None
            if group is not exact or len(group) > 1 or other_builds:
                why = f"chose {chosen.filename}: {how}"
                if other_builds:
                    why += f"; not {', '.join(sorted(other_builds))} (another build, which pip would prefer)"
                elif len(others) and group is not exact:
                    why += f"; the release also has {len(others)} other file(s)"
            return chosen, "", why
    if sdist is not None and all(t.split("-")[2].startswith("linux_") for t in wanted if t.count("-") == 2):
        return (
            sdist,
            "",
            f"chose {sdist.filename}: the installed wheel ({shown_tags}) was built locally from the source distribution",
        )
    if not same_version:
        return None, "no such version", None
    listed = ", ".join(sorted(same_version)[:4]) + (", ..." if len(same_version) > 4 else "")
    return None, f"no file with the installed tags ({shown_tags}); the index has: {listed}", None
