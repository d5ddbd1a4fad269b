"""Install locked Debian/Ubuntu packages at their exact versions, inside the image being built.

Run by the replay Dockerfile in exec form (no shell):

    python3 /opt/envlock/os_packages.py --report /opt/envlock/os-report.json [--ca-file F] -- name=version ...

Each argument is checked again here (anchored Debian charsets) and handed to
apt-get after ``--`` as an argv element, never through a shell.  A version the
mirror no longer has does not fail the build: the package is installed at the
version the mirror offers and the report says so (``envlock verify`` turns the
report into findings that name the Debian snapshot archive as the fix).  The
script exits non-zero only for bad arguments.

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


def parse_args(argv):
    """(report path, CA file or None, [(name, version)]) or raise ValueError."""
    report = None
    ca_file = None
    rest = list(argv)
    while rest and rest[0] != "--":
        option = rest.pop(0)
        if option in ("--report", "--ca-file") and rest:
            value = rest.pop(0)
            if option == "--report":
                report = value
            else:
                ca_file = value
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
    return report, ca_file, packages


def parse_madison(text, name):
    """Versions that `apt-cache madison NAME` lists, in its order (newest first), without duplicates."""
    versions = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) >= 3 and parts[0] == name and parts[1] and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def parse_policy_candidate(text):
    """The `Candidate:` version of `apt-cache policy NAME`, or None."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            return None if value in ("", "(none)") else value
    return None


def parse_policy_candidates(text):
    """Each package's `Candidate:` version from one `apt-cache policy A B ...` (pure): {name: version or None}."""
    found = {}
    name = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            name = line.rstrip()[:-1]
            found.setdefault(name, None)
        elif name is not None and line.strip().startswith("Candidate:"):
            found[name] = parse_policy_candidate(line)
    return found


def plan_installs(packages, available):
    """Decide each package (pure): returns (install specs, report entries).

    ``available`` maps a name to the versions the mirror has (newest first)
    and, under the key (name, "candidate"), apt's candidate version.
    """
    specs = []
    entries = []
    for name, locked in packages:
        versions = available.get(name, [])
        candidate = available.get((name, "candidate")) or (versions[0] if versions else None)
        entry = {"name": name, "locked": locked, "available": versions[:5]}
        if locked in versions:
            specs.append("%s=%s" % (name, locked))
            entry.update(status="exact", installed=locked)
        elif candidate:
            specs.append("%s=%s" % (name, candidate))
            entry.update(status="differs", installed=candidate)
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


def main(argv):
    try:
        report_path, ca_file, packages = parse_args(argv)
    except ValueError as exc:
        sys.stderr.write("os_packages.py: %s\n" % exc)
        return 2
    report = {"schema": REPORT_SCHEMA, "tool": "apt", "packages": [], "errors": []}
    if packages:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        apt_options = []
        if ca_file and os.path.isfile(ca_file):
            apt_options = ["-o", "Acquire::https::CAInfo=" + ca_file]
        _say("apt-get update")
        code, out = _run(["apt-get"] + apt_options + ["update"], env)
        if code != 0:
            report["errors"].append("apt-get update failed (exit %d): %s" % (code, out.strip()[-500:]))
        # One apt-cache call for all packages (two per package cost ~0.3 s each).
        names = [name for name, _ in packages]
        _, madison = _run(["apt-cache", "madison", "--"] + names, env)
        _, policy = _run(["apt-cache", "policy", "--"] + names, env)
        candidates = parse_policy_candidates(policy)
        available = {}
        for name in names:
            available[name] = parse_madison(madison, name)
            available[(name, "candidate")] = candidates.get(name)
        specs, entries = plan_installs(packages, available)
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
                    entry["error"] = one_out.strip()[-300:]
                    # An old version often needs old versions of its own dependencies
                    # (curl=X needs libcurl4=X), which apt will not pick by itself:
                    # take the mirror's candidate and report the difference.
                    candidate = available.get((entry["name"], "candidate"))
                    if candidate and candidate != entry["installed"]:
                        cand_code, _ = _run(install + ["%s=%s" % (entry["name"], candidate)], env)
                        if cand_code == 0:
                            entry["status"] = "differs"
                            entry["installed"] = candidate
                            continue
                    entry["status"] = "failed"
                    entry["installed"] = None
        report["packages"] = entries
        _run(["apt-get", "clean"], env)
        _clear_directory("/var/lib/apt/lists")
    directory = os.path.dirname(report_path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
