"""Install a lock's conda packages exactly, inside the replay's build stage.

Copied into the build context by envlock and run as
``python conda_install.py PACKAGES_JSON [--ca-file FILE]`` with an
interpreter that has py-rattler (hash-pinned from PyPI).  Standard library
plus rattler only.

1. Every archive is downloaded from the URL envlock planned (the lock's, or a
   mirror's), or taken from ``--local-dir`` (a pack's files: the build has no
   network), and checked against the lock's sha256 (md5 when that is all the
   lock has) here, before rattler sees it: rattler checks hashes of what it
   downloads itself but links ``file://`` archives unchecked.
2. Each archive's own ``info/index.json`` must name the locked package
   (name, version, build).
3. rattler links them into the prefix (prefix placeholders rewritten, noarch
   python packages placed and compiled), without link scripts.
4. Each ``conda-meta`` record is given the URL and channel the lock names, so
   a capture of the image reads the same package identity as the lock.

Every problem is printed as one ``envlock-conda:`` line (all of them, not the
first only) and the script exits 1, which fails the build: nothing unchecked
lands in an image.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

_CHUNK = 1 << 20
_TIMEOUT = 120


def _download(url: str, target: str, context) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT, context=context) as response:  # noqa: S310 (http(s) checked by envlock)
            with open(target + ".part", "wb") as out:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
        os.replace(target + ".part", target)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None


def _digests(path: str) -> dict[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def _label(pkg: dict) -> str:
    return f"{pkg['name']} {pkg['version']} {pkg['build']} ({pkg['filename']})"


def fetch_and_check(packages: list[dict], directory: str, ca_file: str | None, local: bool = False) -> list[str]:
    """Download every archive (``local``: find it in ``directory``) and check its hash; the problems, one line each."""
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    os.makedirs(directory, exist_ok=True)

    def one(pkg: dict) -> str | None:
        target = os.path.join(directory, pkg["filename"])
        if local:
            if not os.path.isfile(target):
                return f"envlock-conda: MISSING {_label(pkg)}: not in {directory}"
        else:
            failed = _download(pkg["url"], target, context)
            if failed:
                return f"envlock-conda: GONE {_label(pkg)}: {pkg['url']} answered {failed}"
        algorithm = "sha256" if pkg.get("sha256") else "md5"
        digests = _digests(target)
        served = digests[algorithm]
        if served != pkg[algorithm]:
            os.remove(target)  # never left where rattler could pick it up
            return (
                f"envlock-conda: HASH MISMATCH {_label(pkg)} from {target if local else pkg['url']}: "
                f"locked {algorithm} {pkg[algorithm]}, served {algorithm} {served}"
            )
        pkg["served"] = digests  # both hashes of the checked bytes, for conda-meta
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [line for line in pool.map(one, packages) if line]


async def _records(packages: list[dict], directory: str):
    from rattler import RepoDataRecord

    records, problems = [], []
    for pkg in packages:
        record = await RepoDataRecord.from_package_archive(os.path.join(directory, pkg["filename"]))
        found = (record.name.normalized, str(record.version), str(record.build))
        if found != (pkg["name"], pkg["version"], pkg["build"]):
            problems.append(
                f"envlock-conda: WRONG PACKAGE {_label(pkg)}: the archive says {' '.join(found)} in its info/index.json"
            )
        records.append(record)
    return records, problems


def _channel_of(url: str, subdir: str) -> str:
    base = url.rsplit("/", 1)[0]
    return base[: -len(subdir) - 1] if base.endswith("/" + subdir) else base


def rewrite_meta(prefix: str, packages: list[dict]) -> None:
    """Each conda-meta record names the lock's URL and channel, not the build stage's scratch file."""
    meta = os.path.join(prefix, "conda-meta")
    for pkg in packages:
        path = os.path.join(meta, f"{pkg['name']}-{pkg['version']}-{pkg['build']}.json")
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        data["url"] = pkg["locked-url"]
        data["channel"] = _channel_of(pkg["locked-url"], pkg["subdir"])
        data["fn"] = pkg["filename"]
        data.update(pkg["served"])
        for key in ("extracted_package_dir", "package_tarball_full_path"):
            data.pop(key, None)
        data.pop("link", None)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)


async def install(spec: dict, directory: str) -> list[str]:
    from rattler import Platform
    from rattler import install as rattler_install

    records, problems = await _records(spec["packages"], directory)
    if problems:
        return problems
    await rattler_install(
        records,
        target_prefix=spec["prefix"],
        cache_dir=os.path.join(directory, "cache"),
        platform=Platform(spec["platform"]),
        execute_link_scripts=False,
        show_progress=False,
    )
    rewrite_meta(spec["prefix"], spec["packages"])
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages_json")
    parser.add_argument("--ca-file")
    parser.add_argument("--download-dir", default="/tmp/envlock/conda/pkgs")
    parser.add_argument("--local-dir", help="the archives are here already (a pack's): nothing is downloaded")
    args = parser.parse_args(argv)
    with open(args.packages_json, encoding="utf-8") as fh:
        spec = json.load(fh)
    directory = args.local_dir or args.download_dir
    problems = fetch_and_check(spec["packages"], directory, args.ca_file, local=bool(args.local_dir))
    if not problems:
        problems = asyncio.run(install(spec, directory))
    for line in problems:
        print(line, file=sys.stderr, flush=True)
    if problems:
        print(f"envlock-conda: {len(problems)} problem(s); nothing was installed", file=sys.stderr)
        return 1
    print(f"envlock-conda: installed {len(spec['packages'])} packages into {spec['prefix']}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without finalizing the interpreter: py-rattler's Rust runtime can abort the interpreter while it finalizes ('PyGILState_Release: thread state must be current', seen in CI at load 10) after the work is done.
    # Every result has been printed and every file written by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
