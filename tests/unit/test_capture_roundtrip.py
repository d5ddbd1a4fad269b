"""Round trips of captured locks: deterministic, lossless, and a fingerprint that is a fixed contract."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from envlock.lockfile import dumps_lock, identity, load_lock, parse_lock
from tests.unit._capture_envs import add_dist, capture, make_venv

SHA = "a" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _rich_env(tmp_path: Path):
    """A venv whose packages use every kind of source, so every Python field is written."""
    venv = make_venv(tmp_path / "env")
    add_dist(venv.site, "Zeta_Pkg", "1.0", requested=True)
    add_dist(venv.site, "torch", "2.13.0+cpu")
    add_dist(
        venv.site,
        "alpha",
        "0.1",
        installer="uv",
        direct_url={"url": "https://files.example/alpha-0.1.whl", "archive_info": {"hashes": {"sha256": SHA}}},
    )
    add_dist(
        venv.site,
        "fromgit",
        "0.2",
        direct_url={
            "url": "https://github.com/o/r.git",
            "vcs_info": {"vcs": "git", "commit_id": COMMIT},
            "subdirectory": "py",
        },
    )
    add_dist(venv.site, "editable", "0.3", direct_url={"url": "file:///srv/editable", "dir_info": {"editable": True}})
    return venv


def _header_command(text: str) -> str:
    second = text.split("\n")[1]
    prefix = "# Re-create it with: "
    assert second.startswith(prefix)
    return second[len(prefix) :]


def test_capture_write_load_write_is_byte_identical(tmp_path: Path) -> None:
    venv = _rich_env(tmp_path)
    result, text = capture(tmp_path / "env.lock", "--python", str(venv.python), env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    loaded = load_lock(tmp_path / "env.lock")
    assert not any("edited" in w for w in loaded.warnings)  # the written fingerprint matches the content
    assert dumps_lock(loaded.lock, _header_command(text)) == text
    # Every source kind really went through the round trip.
    sources = {p.name: p.source for p in loaded.lock.python.packages}
    assert sources == {"zeta-pkg": "index", "torch": "index", "alpha": "url", "fromgit": "vcs", "editable": "editable"}


def _without_created_at(text: str) -> list[str]:
    return [line for line in text.split("\n") if not line.startswith("created-at = ")]


def test_two_captures_of_one_env_differ_only_in_created_at(tmp_path: Path) -> None:
    venv = _rich_env(tmp_path)
    # --project: the test's own directory, not the checkout the tests run in,
    # whose uncommitted diff can change between the two captures.
    first_result, first = capture(tmp_path / "one.lock", "--python", str(venv.python), "--project", str(tmp_path))
    second_result, second = capture(tmp_path / "two.lock", "--python", str(venv.python), "--project", str(tmp_path))
    assert first_result.returncode == 0 and second_result.returncode == 0
    # The two files are named differently, so their header commands differ: compare the bodies.
    first_body, second_body = first.split("\n", 2)[2], second.split("\n", 2)[2]
    assert _without_created_at(first_body) == _without_created_at(second_body)
    assert sum(line.startswith("created-at = ") for line in first_body.split("\n")) == 1


# A lock written by hand, and its canonical content written by hand (sorted
# keys, no spaces, kebab-case, created-at and fingerprint left out): the
# fingerprint is a compatibility contract (DESIGN.md), so a change to the
# canonical form or the hash must show up here.
FIXED_LOCK = """\
lock-version = "1.0"
created-by = "envlock 0.1.0"
created-at = "2026-01-02T03:04:05Z"
origin = "capture"

[python]
implementation = "cpython"
version = "3.11.7"
abi-tag = "cp311"
platform-tag = "manylinux_2_36_x86_64"
environment-kind = "venv"

[[python.packages]]
name = "numpy"
version = "2.4.6"
installer = "pip"
requested = true
source = "index"

[[python.packages]]
name = "torch"
version = "2.13.0+cpu"
installer = "pip"
requested = false
source = "url"
url = "https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"
archive-hash = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

[runtime.env]
OMP_NUM_THREADS = "8"

[project]
commit = "0123456789abcdef0123456789abcdef01234567"
branch = "main"
dirty = false
"""

FIXED_CANONICAL = (
    '{"created-by":"envlock 0.1.0","lock-version":"1.0","origin":"capture",'
    '"project":{"branch":"main","commit":"0123456789abcdef0123456789abcdef01234567","dirty":false},'
    '"python":{"abi-tag":"cp311","environment-kind":"venv","implementation":"cpython",'
    '"packages":['
    '{"installer":"pip","name":"numpy","requested":true,"source":"index","version":"2.4.6"},'
    '{"archive-hash":"sha256:1111111111111111111111111111111111111111111111111111111111111111",'
    '"installer":"pip","name":"torch","requested":false,"source":"url",'
    '"url":"https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl",'
    '"version":"2.13.0+cpu"}],'
    '"platform-tag":"manylinux_2_36_x86_64","version":"3.11.7"},'
    '"runtime":{"env":{"OMP_NUM_THREADS":"8"}}}'
)
# sha256 of FIXED_CANONICAL, pinned (computed once with `sha256sum`; the test recomputes it with hashlib).
FIXED_FINGERPRINT = "sha256:3aa29f40edcc301fc5838cd77d0ec48dea8816033c7f76f376388ccba30e4f61"


def test_fingerprint_of_a_fixed_lock_is_pinned() -> None:
    assert json.loads(FIXED_CANONICAL)  # the hand-written canonical form is well-formed JSON
    assert "sha256:" + hashlib.sha256(FIXED_CANONICAL.encode("utf-8")).hexdigest() == FIXED_FINGERPRINT
    lock = parse_lock(FIXED_LOCK.encode(), "fixed.lock").lock
    assert identity.fingerprint(lock) == FIXED_FINGERPRINT
    # The creation time is not part of it.
    later = parse_lock(FIXED_LOCK.replace("2026-01-02T03:04:05Z", "2030-12-31T23:59:59Z").encode(), "later.lock").lock
    assert identity.fingerprint(later) == FIXED_FINGERPRINT


def test_a_fixed_lock_with_its_fingerprint_loads_without_an_edit_warning_and_an_edit_is_noticed() -> None:
    signed = FIXED_LOCK.replace('origin = "capture"\n', f'fingerprint = "{FIXED_FINGERPRINT}"\norigin = "capture"\n')
    assert parse_lock(signed.encode(), "signed.lock").warnings == []
    edited = signed.replace('OMP_NUM_THREADS = "8"', 'OMP_NUM_THREADS = "1"')
    warnings = parse_lock(edited.encode(), "edited.lock").warnings
    assert any("edited" in w for w in warnings)
