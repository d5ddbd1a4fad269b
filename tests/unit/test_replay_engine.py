"""The replay engine's pure parts and its CLI behaviour without an engine.

No Docker here: builder choice from CLI versions, deterministic build
contexts, the progress display, the own-base-image choice, the verifier's
scoping and comparers, the report merge, and `envlock replay` /
`envlock verify` pointed at an engine that does not exist.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from envlock.commands.progress import TerminalDisplay
from envlock.errors import EngineError
from envlock.findings import BLOCKER, EXACT, INFO, NOT_REPRODUCIBLE, NUMERIC, Finding
from envlock.lockfile import model as m
from envlock.lockfile import write_lock
from envlock.replay import buildkit_cli, context, debootstrap_base, engine, verify
from envlock.replay.base_matrix import load_matrix
from envlock.replay.orchestrate import ReplayOutcome
from envlock.replay.progress import Progress
from tests.conftest import run_envlock

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/envlock-test/docker.sock"}


# --- builder choice ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20.10.24+dfsg1", (20, 10, 24)),
        ("28.2.2", (28, 2, 2)),
        ("v23.0", (23, 0)),
        ("  19.03.15\n", (19, 3, 15)),
        ("dev", None),
        ("", None),
    ],
)
def test_parse_client_version(text, expected):
    assert buildkit_cli.parse_client_version(text) == expected


@pytest.mark.parametrize(
    "version, has_buildx, mode",
    [
        ("20.10.24+dfsg1", False, "builtin"),  # Debian's docker.io: BuildKit built in
        ("22.06.0", False, "builtin"),
        ("28.2.2", False, None),  # 23+ without the buildx plugin cannot use BuildKit
        ("23.0.0", False, None),
        ("28.2.2", True, "buildx"),
        ("20.10.24", True, "buildx"),
        ("18.06.3", False, None),  # before BuildKit landed in the CLI
        ("nonsense", False, None),
    ],
)
def test_buildkit_mode(version, has_buildx, mode):
    assert buildkit_cli.buildkit_mode(version, has_buildx) == mode


def test_unknown_builder_is_rejected():
    with pytest.raises(EngineError, match="unknown builder"):
        engine.DockerEngine(client=object()).choose_builder("kaniko")


def test_sdk_builder_refuses_secrets_before_contacting_anything():
    class Unreachable:
        def ping(self):
            raise AssertionError("must not be reached")

    request = engine.BuildRequest(
        files=(context.ContextFile("Dockerfile", b"FROM x\n"),), secrets={"ca": "/etc/hostname"}
    )
    eng = engine.DockerEngine(client=Unreachable())
    eng._info = engine.EngineInfo("20.10", "1.41", "linux", "amd64")
    with pytest.raises(EngineError, match="cannot pass build secrets"):
        eng.build(
            request,
            engine.BuilderChoice("sdk", None, "test"),
            Progress(TerminalDisplay(stream=io.StringIO(), live=False)),
        )


@pytest.mark.parametrize(
    "tag, network, problem",
    [
        ("--output=/tmp/x", "host", "--tag"),
        ("ok:1 --no-cache", "host", "--tag"),
        ("ok:1", "host --privileged", "--network"),
        ("ok:1", "-x", "--network"),
    ],
)
def test_tags_and_networks_that_could_become_options_are_refused(tag, network, problem):
    request = engine.BuildRequest(files=(context.ContextFile("Dockerfile", b"FROM x\n"),), tag=tag, network=network)
    with pytest.raises(EngineError, match=problem):
        engine.DockerEngine(client=object()).build(request, engine.BuilderChoice("sdk", None, "test"))


# --- build contexts -----------------------------------------------------------------


def test_context_tar_is_deterministic_and_normalised(tmp_path):
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"wheel-bytes")
    a = (
        context.ContextFile("b.txt", b"B"),
        context.ContextFile("Dockerfile", b"FROM x\n"),
        context.ContextFile("w/w.whl", source=str(wheel)),
    )
    first = context.context_tar(a)
    second = context.context_tar(tuple(reversed(a)))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert [x.name for x in members] == ["Dockerfile", "b.txt", "w/w.whl"]
        assert {x.mtime for x in members} == {946684800}
        assert {(x.uid, x.gid, x.uname, x.gname) for x in members} == {(0, 0, "", "")}
        assert tar.extractfile("w/w.whl").read() == b"wheel-bytes"


@pytest.mark.parametrize("path", ["../evil", "/etc/passwd", "a/../../b", ""])
def test_context_paths_cannot_escape(path, tmp_path):
    with pytest.raises(EngineError, match="escapes the context"):
        context.context_tar((context.ContextFile(path, b"x"),))
    with pytest.raises(EngineError, match="escapes the context"):
        context.write_context_dir((context.ContextFile(path, b"x"),), tmp_path)


def test_write_context_dir_matches_the_tar(tmp_path):
    files = (
        context.ContextFile("Dockerfile", b"FROM x\n"),
        context.ContextFile("envlock/run.sh", b"#!/bin/sh\n", 0o755),
    )
    context.write_context_dir(files, tmp_path)
    assert (tmp_path / "Dockerfile").read_bytes() == b"FROM x\n"
    assert (tmp_path / "envlock/run.sh").stat().st_mode & 0o777 == 0o755
    assert int((tmp_path / "Dockerfile").stat().st_mtime) == 946684800


# --- progress -------------------------------------------------------------------------


def test_progress_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(TerminalDisplay(stream=out, live=False))
    progress.line("Step 1/3 : FROM base\n")
    progress.line("#7 sha256:" + "a" * 64)  # BuildKit cache-key noise
    progress.line("   ")
    progress.line("\x1b]0;owned\x07 done")
    assert out.getvalue().splitlines() == ["Step 1/3 : FROM base", "\\u001b]0;owned\\u0007 done"]
    assert progress.tail(1) == ["\\u001b]0;owned\\u0007 done"]


def test_progress_live_redraws_one_line():
    out = io.StringIO()
    progress = Progress(TerminalDisplay(stream=out, live=True))
    progress.line("first")
    progress.line("x" * 500)
    progress.step("built")
    text = out.getvalue()
    assert text.startswith("\r\x1b[2Kfirst\r\x1b[2K")
    assert "\n" not in text.split("built")[0]  # only the milestone ends a line
    longest = max(len(part) for part in text.split("\r\x1b[2K"))
    assert longest < 500  # clipped to the terminal width
    assert text.endswith("\r\x1b[2Kbuilt\n")
    assert len(progress.lines) == 2  # everything is kept for a failure report


def test_progress_without_a_display_keeps_lines_and_writes_nothing(capsys):
    progress = Progress()
    progress.line("Step 1/3 : FROM base\n")
    progress.step("built")
    progress.debug("running docker build")
    progress.close()
    assert progress.lines == ["Step 1/3 : FROM base"]
    assert capsys.readouterr() == ("", "")


def test_debug_lines_show_only_under_envlock_debug(monkeypatch):
    out = io.StringIO()
    monkeypatch.delenv("ENVLOCK_DEBUG", raising=False)
    Progress(TerminalDisplay(stream=out, live=False)).debug("running x")
    monkeypatch.setenv("ENVLOCK_DEBUG", "1")
    Progress(TerminalDisplay(stream=out, live=False, quiet=True)).debug("running y")
    assert out.getvalue() == "envlock: running y\n"


# --- the own base image ------------------------------------------------------------------


@pytest.mark.parametrize(
    "python, os_id, os_version, suite, minor",
    [
        ("3.11.7", "debian", "12", "bookworm", "3.11"),
        ("3.11.2", None, None, "bookworm", "3.11"),
        ("3.13.1", "debian", "12", "trixie", "3.13"),  # the Python minor decides first
        ("3.9.18", "ubuntu", "22.04", "bullseye", "3.9"),
        ("3.12.4", "debian", "13", "trixie", "3.13"),  # no Debian ships 3.12: the lock's release
        ("3.12.4", "ubuntu", "24.04", "bookworm", "3.11"),
        (None, None, None, "bookworm", "3.11"),
    ],
)
def test_choose_spec(python, os_id, os_version, suite, minor):
    spec = debootstrap_base.choose_spec(python, os_id, os_version)
    assert (spec.suite, spec.python_minor) == (suite, minor)
    assert spec.ref == f"envlock/python:{minor}-debian-{suite}"


def test_matrix_debootstrap_rows_are_the_images_baseimage_builds():
    rows = [r for r in load_matrix() if r.kind == "debootstrap"]
    assert rows, "the base-image matrix has no debootstrap rows"
    for row in rows:
        suite = debootstrap_base.DEBIAN_CODENAME[row.distro_version]
        spec = debootstrap_base.BaseImageSpec(suite, row.python)
        assert row.image == spec.ref
        assert debootstrap_base.DEBIAN_PYTHON[suite] == row.python


def test_python_dockerfile_uses_exec_form_and_fixed_text():
    text = debootstrap_base.python_dockerfile(debootstrap_base.BaseImageSpec("bookworm", "3.11"))
    lines = text.splitlines()
    assert lines[0].startswith("# Generated by envlock")
    assert "FROM envlock/debian-minbase:bookworm" in lines
    run = next(line for line in lines if line.startswith("RUN "))
    argv = json.loads(run[4:])
    assert argv[:2] == ["/bin/sh", "-c"]
    assert "python3.11-venv" in argv[2] and "rm -rf /var/lib/apt/lists/*" in argv[2]


def test_base_recipe_names_what_the_image_is_made_from():
    bookworm = debootstrap_base.BaseImageSpec("bookworm", "3.11")
    assert debootstrap_base.python_recipe(bookworm) == debootstrap_base.python_recipe(
        debootstrap_base.BaseImageSpec("bookworm", "3.11")
    )
    assert debootstrap_base.python_recipe(bookworm) != debootstrap_base.python_recipe(
        debootstrap_base.BaseImageSpec("trixie", "3.13")
    )
    mirrored = debootstrap_base.BaseImageSpec("bookworm", "3.11", mirror="http://mirror.example/debian")
    assert debootstrap_base.python_recipe(bookworm) != debootstrap_base.python_recipe(mirrored)


def test_sources_cover_release_updates_and_security():
    text = debootstrap_base.sources_deb822(debootstrap_base.BaseImageSpec("bookworm", "3.11"))
    assert "Suites: bookworm bookworm-updates" in text
    assert "Suites: bookworm-security" in text
    assert text.count("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg") == 2


# --- verification: scoping, comparers, statuses ---------------------------------------


def _lock(
    python_version="3.11.7",
    packages=(("six", "1.16.0"), ("PyYAML", "6.0.2")),
    os_packages=(),
    gpus=(),
    flags=("avx2",),
    cudart=None,
):
    return m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version=python_version,
            environment_kind="venv",
            packages=tuple(m.PythonPackage(name=n, version=v) for n, v in packages),
        ),
        os=m.OsSection(
            id="debian",
            version_id="12",
            kernel="6.1.0",
            packages=tuple(m.OsPackage(name=n, version=v, manual=man) for n, v, man in os_packages),
        ),
        nvidia=m.NvidiaSection(
            driver_present=bool(gpus),
            driver_version="535.54" if gpus else None,
            cuda_driver_version="12.6" if gpus else None,
            gpus=tuple(m.Gpu(index=i, name=g) for i, g in enumerate(gpus)),
        ),
        cpu=m.CpuSection(model_name="Xeon", flags=tuple(flags)),
        cuda=m.CudaSection(components=(m.CudaComponent(name="cudart", version=cudart, source="pip"),))
        if cudart
        else None,
        project=m.ProjectSection(commit="a" * 40),
    )


def test_scope_keeps_only_what_an_image_reproduces():
    locked = _lock(os_packages=(("jq", "1.6-2.1", True), ("libc6", "2.36-9", False)))
    image = _lock(
        python_version="3.11.2",
        os_packages=(("jq", "1.6-2.1+deb12u3", False), ("zstd", "1.5", False), ("libc6", "2.36-9+deb12u13", False)),
    )
    want, got = verify.scope_to_image(locked, image)
    assert [p.name for p in want.os.packages] == ["jq"]
    assert [p.name for p in got.os.packages] == ["jq"]
    assert want.os.kernel is None and got.os.kernel is None
    for scoped in (want, got):
        assert scoped.nvidia is None and scoped.cpu is None and scoped.project is None


def test_compare_image_reports_interpreter_and_package_differences():
    locked = _lock(
        packages=(("six", "1.16.0"), ("PyYAML", "6.0.2"), ("idna", "3.7")), os_packages=(("jq", "1.6-2.1", True),)
    )
    image = _lock(
        python_version="3.11.2",
        packages=(("six", "1.16.0"), ("pyyaml", "6.0.1"), ("extra-pkg", "1.0")),
        os_packages=(("jq", "1.6-2.1+deb12u3", True),),
    )
    found = {verify.finding_place(f): f for f in verify.compare_image(locked, image)}
    assert found["python.version"].locked == "3.11.7" and found["python.version"].actual == "3.11.2"
    assert found["python.version"].severity == NUMERIC  # same minor: a patch-level finding, not hidden
    assert found["python.packages[pyyaml]"].actual == "6.0.1"  # PyYAML and pyyaml are one project
    assert found["python.packages[idna]"].locked == "3.7" and found["python.packages[idna]"].actual is None
    assert found["python.packages[extra-pkg]"].actual == "1.0"
    assert "python.packages[six]" not in found
    assert found["os.packages[jq]"].actual == "1.6-2.1+deb12u3"
    assert set(found) == {
        "python.version",
        "python.packages[pyyaml]",
        "python.packages[idna]",
        "python.packages[extra-pkg]",
        "os.packages[jq]",
    }


def test_host_findings_driver_gpus_and_isa():
    locked = _lock(gpus=("NVIDIA H100 80GB HBM3",) * 8, flags=("avx2", "avx512f", "amx_tile"), cudart="12.4")
    bare_host = _lock(flags=("avx2",))
    found = {f.path: f for f in verify.host_findings(locked, bare_host)}
    assert found["nvidia.gpus"].severity == BLOCKER
    assert "CUDA 12.4" in found["nvidia.gpus"].message and found["nvidia.gpus"].actual == "none"
    assert "amx_tile" in found["cpu.flags"].message and "avx512f" in found["cpu.flags"].message
    assert verify.host_findings(locked, locked) == []


def test_probe_bundle_holds_envlock_and_its_capture_dependencies():
    data = verify.probe_bundle()
    assert data == verify.probe_bundle()  # deterministic
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "opt/envlock-probe/envlock/cli.py" in names
    assert "opt/envlock-probe/envlock/capture/collect.py" in names
    assert "opt/envlock-probe/packaging/version.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so"))]
    import importlib.util

    if importlib.util.find_spec("tomli") is not None:  # needed by capture on Python 3.10 images
        assert "opt/envlock-probe/tomli/_parser.py" in names
    assert all(n.startswith("opt") for n in names)


def test_report_merges_plan_and_verify_findings_per_place():
    plan_finding = Finding(
        "os",
        "os.packages[jq]",
        "differs",
        "the mirror no longer has 1.6-2.1",
        fix="snapshot.debian.org",
        status=NOT_REPRODUCIBLE,
    )
    verify_finding = Finding(
        "os",
        "os.packages[jq:amd64]",
        "differs",
        "jq: 1.6-2.1 in lock, 1.6-2.1+deb12u3 in image",
        actual="1.6-2.1+deb12u3",
    )
    python_plan = Finding("python", "python.version", "differs", "base follows 3.11.x", status="differs")
    python_seen = Finding("python", "python.version", NUMERIC, "3.11.7 in lock, 3.11.2 in image", why=None)
    info = Finding("python", "python.packages", INFO, "installed hash-pinned", status=EXACT)

    class Plan:
        findings = (plan_finding, info, python_plan)

    class Report:
        findings = (verify_finding, python_seen)
        host_findings = ()

    outcome = ReplayOutcome(plan=Plan(), dockerfile="", files=(), verify=Report())
    merged = outcome.all_findings()
    jq = [f for f in merged if f.layer == "os"]
    # The plan knew why (the mirror dropped it); verification saw what came instead.
    assert len(jq) == 1 and jq[0].fix == "snapshot.debian.org" and jq[0].message.startswith("the mirror no longer has")
    assert jq[0].status == NOT_REPRODUCIBLE and jq[0].actual == "1.6-2.1+deb12u3"
    # Otherwise verification wins.
    assert [f.message for f in merged if f.path == "python.version"] == ["3.11.7 in lock, 3.11.2 in image"]
    assert outcome.exit_code == 1
    assert ReplayOutcome(plan=Plan(), dockerfile="", files=()).exit_code == 1
    assert ReplayOutcome(plan=type("P", (), {"findings": (info,)})(), dockerfile="", files=()).exit_code == 0


# --- the commands without an engine --------------------------------------------------------


@pytest.fixture()
def tiny_lock(tmp_path):
    path = tmp_path / "envlock.lock"
    write_lock(m.Lock(python=m.PythonSection(implementation="cpython", version="3.11.7", packages=())), path, "test")
    return path


def test_replay_without_engine_says_how_to_start_one(tiny_lock):
    result = run_envlock("replay", str(tiny_lock), env=NO_ENGINE)
    assert result.returncode == 2
    assert "no Docker engine is reachable" in result.stderr
    assert "dockerd" in result.stderr and "--into-venv" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_without_engine_is_a_clean_error(tiny_lock):
    result = run_envlock("verify", "some-image:1", str(tiny_lock), env=NO_ENGINE)
    assert result.returncode == 2
    assert "no Docker engine is reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_needs_no_engine(tiny_lock):
    result = run_envlock("replay", str(tiny_lock), "--dry-run", "--builder", "sdk", env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# envlock replay:")
    # No OS layer in the lock: the matrix's newest Debian with the locked Python minor.
    assert [line for line in lines if line.startswith("FROM python:3.11-slim-") and line.endswith(" AS envlock-python")]


def test_require_digest_refuses_a_base_pinned_only_by_tag(tiny_lock):
    result = run_envlock("replay", str(tiny_lock), "--dry-run", "--builder", "sdk", "--require-digest", env=NO_ENGINE)
    assert result.returncode == 2
    assert "strict mode refuses the base image python:3.11-slim-" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_require_digest_accepts_a_base_given_by_digest(tiny_lock):
    pinned = "python:3.11-slim-bookworm@sha256:" + "ab" * 32
    result = run_envlock(
        "replay",
        str(tiny_lock),
        "--dry-run",
        "--builder",
        "sdk",
        "--require-digest",
        "--base-image",
        pinned,
        env=NO_ENGINE,
    )
    assert result.returncode == 0, result.stderr
    assert any(line.startswith(f"FROM {pinned}") for line in result.stdout.splitlines())


def test_output_dir_writes_the_context_without_an_engine(tiny_lock, tmp_path):
    out = tmp_path / "ctx"
    result = run_envlock("replay", str(tiny_lock), "--output-dir", str(out), "--builder", "sdk", env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    assert (out / "Dockerfile").read_text().startswith("# envlock replay:")
    assert (out / "envlock" / "envlock.lock").is_file()
    again = run_envlock("replay", str(tiny_lock), "--output-dir", str(out), "--builder", "sdk", env=NO_ENGINE)
    assert again.returncode == 2 and "not an empty directory" in again.stderr


def test_bad_ca_cert_is_bad_input(tiny_lock, tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    result = run_envlock("replay", str(tiny_lock), "--dry-run", "--ca-cert", str(bogus), env=NO_ENGINE)
    assert result.returncode == 2
    assert "not a PEM certificate bundle" in result.stderr
