"""Install locked Debian/Ubuntu packages at their exact versions, inside the image being built.

Run by the replay Dockerfile in exec form (no shell):

    python3 /opt/envlock/os_packages.py --report /opt/envlock/os-report.json [--ca-file F]
        [--source LINE]... [--fallback LINE]... -- name=version ...

Each argument is checked again here (anchored Debian charsets, one pattern
for apt source lines) and handed to apt-get after ``--`` as an argv element,
never through a shell.  ``--source`` lines replace the image's apt sources (a
site mirror, or archive.debian.org for an end-of-life release).
``--fallback`` lines are the snapshot archive at the lock's time anchor: they
are added only when the mirror no longer has a locked version.

Exact or a finding: a locked version that neither the mirror nor the archive
has is not installed, and the report says so (``envlock verify`` turns the
report into findings); the mirror's newer version is never installed in its
place.  The script exits non-zero only for bad arguments.

Written for the oldest Python a base image may have (3.8): standard library
only, no newer syntax.  Shipped inside envlock's wheel as a template; it is
copied into the build context verbatim.
"""

import json
import os
import re
import subprocess
import sys

REPORT_SCHEMA = 1
NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")
VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*\Z")
MAX_ARGS = 5000
# The same pattern as envlock/replay/snapshot.py's SOURCE_LINE: nothing else reaches apt's sources.
SOURCE_LINE = re.compile(
    r"deb (?:\[check-valid-until=no\] )?https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+)*/? "
    r"[a-z][a-z0-9-]{1,40}(?: [a-z][a-z0-9-]{1,30}){1,4}\Z"
)
LOCAL_DIR = re.compile(r"/[A-Za-z0-9._/-]{1,200}\Z")
DEB_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_%-]{0,200}\.deb\Z")
SOURCES_FILE = "/etc/apt/sources.list"
SOURCES_DIR = "/etc/apt/sources.list.d"
FALLBACK_FILE = "/etc/apt/sources.list.d/envlock-snapshot.list"


def parse_args(argv):
    """{"report", "ca_file", "sources", "fallbacks", "packages": [(name, version)]} or raise ValueError."""
    report = None
    ca_file = None
    local = None
    sources = []
    fallbacks = []
    rest = list(argv)
    while rest and rest[0] != "--":
        option = rest.pop(0)
        if option in ("--report", "--ca-file", "--source", "--fallback", "--local") and rest:
            value = rest.pop(0)
            if option == "--report":
                report = value
            elif option == "--local":
                if not LOCAL_DIR.match(value):
                    raise ValueError("--local must be an absolute directory path: %r" % value[:80])
                local = value
            elif option == "--ca-file":
                ca_file = value
            elif not SOURCE_LINE.match(value) or len(value) > 400:
                raise ValueError("not an apt source line: %r" % value[:80])
            elif option == "--source":
                sources.append(value)
            else:
                fallbacks.append(value)
        else:
            raise ValueError("unknown option %r" % option)
    if not rest or rest[0] != "--":
        raise ValueError("missing -- before the packages")
    rest.pop(0)
    if report is None or not report.startswith("/"):
        raise ValueError("--report must be an absolute path")
    if len(rest) > MAX_ARGS:
        raise ValueError("too many packages")
    packages = []
    for item in rest:
        name, sep, version = item.partition("=")
        if not sep or not NAME.match(name) or not VERSION.match(version) or len(item) > 300:
            raise ValueError("not a Debian name=version: %r" % item[:80])
        packages.append((name, version))
    return {
        "report": report,
        "ca_file": ca_file,
        "sources": sources,
        "fallbacks": fallbacks,
        "local": local,
        "packages": packages,
    }


def parse_madison(text, name):
    """Versions that `apt-cache madison NAME` lists, in its order (newest first), without duplicates."""
    versions = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) >= 3 and parts[0] == name and parts[1] and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def plan_installs(packages, available, origins=None):
    """Decide each package (pure): returns (install specs, report entries).

    ``available`` maps a name to the versions apt can install (newest first);
    ``origins`` maps (name, version) to "snapshot" for versions that only the
    snapshot archive has.  Exact or nothing: a locked version apt cannot
    install is reported "missing", never replaced by another version.
    """
    origins = origins or {}
    specs = []
    entries = []
    for name, locked in packages:
        versions = available.get(name, [])
        entry = {"name": name, "locked": locked, "available": versions[:5]}
        if locked in versions:
            specs.append("%s=%s" % (name, locked))
            entry.update(status="exact", installed=locked, origin=origins.get((name, locked), "mirror"))
        else:
            entry.update(status="missing", installed=None)
        entries.append(entry)
    return specs, entries


_EXACT_DEPENDS = re.compile(r"Depends: ([a-z0-9][a-z0-9+.-]+)(?::[a-z0-9-]+)? \(= ([^)\s]+)\) but")


def parse_exact_dependency_conflicts(text):
    """(name, version) pairs that apt says an old package needs exactly (pure).

    From apt-get's "curl : Depends: libcurl4 (= 7.88.1-10+deb12u5) but
    7.88.1-10+deb12u15 is to be installed": installing libcurl4 at that version
    alongside lets curl keep its locked version.
    """
    found = []
    for name, version in _EXACT_DEPENDS.findall(text):
        if NAME.match(name) and VERSION.match(version) and (name, version) not in found:
            found.append((name, version))
    return found


MAX_DEPENDENCY_ROUNDS = 5


def install_exact(install, specs, env, run):
    """Install the name=version specs, adding the exact dependency versions apt asks for; (ok, output, added deps)."""
    extra = []
    out = ""
    for _ in range(MAX_DEPENDENCY_ROUNDS):
        code, out = run(install + list(specs) + ["%s=%s" % pair for pair in extra], env)
        if code == 0:
            return True, out, extra
        needed = [pair for pair in parse_exact_dependency_conflicts(out) if pair not in extra]
        if not needed:
            break
        extra.extend(needed)
    return False, out, extra


def _run(argv, env):
    try:
        done = subprocess.run(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        return 127, str(exc)
    return done.returncode, done.stdout


def _run_shown(argv, env):
    """Like _run, but each line also goes to the build log as it comes: an install can take minutes."""
    try:
        child = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, errors="replace"
        )
    except OSError as exc:
        return 127, str(exc)
    lines = []
    for line in child.stdout:
        lines.append(line)
        sys.stderr.write(line)
        sys.stderr.flush()
    child.stdout.close()
    return child.wait(), "".join(lines)


def _say(message):
    sys.stderr.write("os_packages: %s\n" % message)
    sys.stderr.flush()


def _clear_directory(path):
    """Remove what apt downloaded (as Debian's images do), keeping the directory itself."""
    import shutil

    for entry in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass


def write_sources(path, lines):
    """Write apt source lines to ``path`` (one per line)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# written by envlock replay\n")
        for line in lines:
            handle.write(line + "\n")


def replace_sources(lines):
    """Make ``lines`` the image's only apt sources (a site mirror, or the archive of an end-of-life release)."""
    for entry in sorted(os.listdir(SOURCES_DIR)) if os.path.isdir(SOURCES_DIR) else []:
        if entry.endswith((".list", ".sources")):
            os.unlink(os.path.join(SOURCES_DIR, entry))
    write_sources(SOURCES_FILE, lines)


def read_available(names, env):
    """{name: versions apt can install, newest first}, from one `apt-cache madison` call."""
    _, madison = _run(["apt-cache", "madison", "--"] + names, env)
    return dict((name, parse_madison(madison, name)) for name in names)


def _update(apt_options, env, report, what):
    _say("apt-get update (%s)" % what)
    # No package descriptions: an install never reads them, and apt's update is
    # transactional per repository, so one missing translation file (common on
    # site mirrors) would discard that repository's package lists too.
    code, out = _run(["apt-get"] + apt_options + ["-o", "Acquire::Languages=none", "update"], env)
    if code != 0:
        report["errors"].append("apt-get update (%s) failed (exit %d): %s" % (what, code, out.strip()[-500:]))


def read_installed(names, env):
    """{name: version} of the named packages dpkg has installed."""
    _, out = _run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"], env)
    found = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed" and parts[0] in names:
            found[parts[0]] = parts[1]
    return found


def install_local(directory, packages, report, env):
    """Install the .deb files of a pack from ``directory``: no apt source, no network; exact or "failed"."""
    files = sorted(name for name in os.listdir(directory) if DEB_FILE.match(name))
    report["local"] = len(files)
    _say("installing %d .deb files from the pack" % len(files))
    install = ["apt-get", "install", "-y", "--no-install-recommends", "--allow-downgrades", "--"]
    code, out = _run_shown(install + [os.path.join(directory, name) for name in files], env)
    if code != 0:
        report["errors"].append(
            "apt-get install of the pack's .deb files failed (exit %d): %s" % (code, out.strip()[-500:])
        )
    installed = read_installed([name for name, _ in packages], env)
    entries = []
    for name, locked in packages:
        entry = {"name": name, "locked": locked, "available": [], "origin": "pack"}
        if installed.get(name) == locked:
            entry.update(status="exact", installed=locked)
        else:
            entry.update(status="failed", installed=None)
        entries.append(entry)
    report["packages"] = entries
    _run(["apt-get", "clean"], env)
    _clear_directory(directory)


def main(argv):
    try:
        args = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write("os_packages.py: %s\n" % exc)
        return 2
    packages = args["packages"]
    report = {"schema": REPORT_SCHEMA, "tool": "apt", "packages": [], "errors": []}
    if packages and args["local"]:
        install_local(args["local"], packages, report, dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"))
    elif packages:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        apt_options = []
        if args["ca_file"] and os.path.isfile(args["ca_file"]):
            apt_options = ["-o", "Acquire::https::CAInfo=" + args["ca_file"]]
        if args["sources"]:
            replace_sources(args["sources"])
            report["sources"] = args["sources"]
        _update(apt_options, env, report, "mirror")
        names = [name for name, _ in packages]
        available = read_available(names, env)
        origins = {}
        gone = [(name, version) for name, version in packages if version not in available.get(name, [])]
        if gone and args["fallbacks"]:
            # The mirror moved on: add the archive of the lock's time, only now.
            _say("%d locked versions are not on the mirror; adding the snapshot archive" % len(gone))
            write_sources(FALLBACK_FILE, args["fallbacks"])
            report["fallbacks"] = args["fallbacks"]
            _update(apt_options, env, report, "snapshot archive")
            available = read_available(names, env)
            for name, version in gone:
                origins[(name, version)] = "snapshot"
        specs, entries = plan_installs(packages, available, origins)
        counts = {}
        for entry in entries:
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        _say(
            "%d packages: %s" % (len(entries), ", ".join("%d %s" % (n, status) for status, n in sorted(counts.items())))
        )
        if specs:
            install = (
                ["apt-get"] + apt_options + ["install", "-y", "--no-install-recommends", "--allow-downgrades", "--"]
            )
            _say("installing %d packages" % len(specs))
            ok, out, deps = install_exact(install, specs, env, _run_shown)
            if ok and deps:
                report["dependencies"] = ["%s=%s" % pair for pair in deps]
                _run(["apt-mark", "auto", "--"] + [pair[0] for pair in deps], env)
            if not ok:
                # One conflicting pin must not cost the others: retry one by one.
                report["notes"] = [
                    "installing all packages together failed; each was retried alone: " + out.strip()[-300:]
                ]
                for entry in entries:
                    if entry["installed"] is None:
                        continue
                    ok, one_out, deps = install_exact(
                        install, ["%s=%s" % (entry["name"], entry["installed"])], env, _run
                    )
                    if ok:
                        if deps:
                            entry["with-dependencies"] = ["%s=%s" % pair for pair in deps]
                            # they came in only for this package: keep apt's view that they are automatic
                            _run(["apt-mark", "auto", "--"] + [pair[0] for pair in deps], env)
                        continue
                    # Exact or nothing: the mirror's version is never put in its place.
                    entry["error"] = one_out.strip()[-300:]
                    entry["status"] = "failed"
                    entry["installed"] = None
        report["packages"] = entries
        if os.path.exists(FALLBACK_FILE):
            # The image keeps the sources it came with, not a pointer into the archive.
            os.unlink(FALLBACK_FILE)
        _run(["apt-get", "clean"], env)
        _clear_directory("/var/lib/apt/lists")
    directory = os.path.dirname(args["report"])
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(args["report"], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
