"""`envlock export`: files that the real tools accept, and refuse when tampered with.

Python exports are installed by the real pip 26 (this project's .venv) into
fresh virtualenvs, from the real PyPI (tests marked ``network``), isolated from
this machine's pip configuration (its extra file:// indexes, find-links and
constraints): ``PIP_CONFIG_FILE=/dev/null`` and an explicit index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.lockfile import model as m
from envlock.lockfile.write import write_lock
from tests.conftest import run_envlock

SMALL = (("six", "1.16.0"), ("idna", "3.7"), ("certifi", "2024.2.2"))
# PyPI's published sha256 of six-1.16.0-py2.py3-none-any.whl.
SIX_SHA = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def python_lock(*packages: m.PythonPackage, **sections) -> m.Lock:
    return m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version="3.11.7",
            abi_tag="cp311",
            platform_tag="manylinux_2_36_x86_64",
            packages=packages,
        ),
        os=m.OsSection(id="debian", version_id="12", codename="bookworm", glibc="2.36"),
        **sections,
    )


def small_lock() -> m.Lock:
    return python_lock(*(m.PythonPackage(name=n, version=v) for n, v in SMALL))


def isolated_pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    return path / "bin" / "python"


def pip_install(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """This project's pip 26 installing into another interpreter (pip --python)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input", *args],
        capture_output=True,
        text=True,
        env=isolated_pip_env(),
        cwd=cwd,
        timeout=600,
    )


def installed(python: Path) -> dict[str, str]:
    code = "import importlib.metadata as md, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in md.distributions()}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    return json.loads(out)


def tamper(path: Path, sha: str) -> None:
    text = path.read_text()
    assert sha in text
    flipped = sha[:-1] + ("0" if sha[-1] != "0" else "1")
    path.write_text(text.replace(sha, flipped))


# --- pylock.toml and requirements with real pip ----------------------------------------


@pytest.mark.network
def test_exported_pylock_installs_with_real_pip_and_refuses_a_tampered_hash(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    out = tmp_path / "export" / "pylock.toml"
    out.parent.mkdir()
    result = run_envlock("export", "pylock", str(lock_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f'sha256 = "{SIX_SHA}"' in out.read_text()

    python = fresh_venv(tmp_path / "venv")
    done = pip_install(python, "-r", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in installed(python).items() if k in dict(SMALL)} == dict(SMALL)

    tamper(out, SIX_SHA)
    python2 = fresh_venv(tmp_path / "venv2")
    refused = pip_install(python2, "-r", str(out), cwd=tmp_path)
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert installed(python2) == {}  # nothing installed, not even the untampered packages


@pytest.mark.network
def test_exported_requirements_install_with_require_hashes_and_refuse_a_tampered_hash(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    out = tmp_path / "requirements.txt"
    result = run_envlock("export", "requirements", str(lock_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert f"six==1.16.0 \\\n    --hash=sha256:{SIX_SHA}" in text
    assert "--extra-index-url" not in text and "file://" not in text

    python = fresh_venv(tmp_path / "venv")
    done = pip_install(python, "--require-hashes", "--no-deps", "--only-binary", ":all:", "-r", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in installed(python).items() if k in dict(SMALL)} == dict(SMALL)

    tamper(out, SIX_SHA)
    python2 = fresh_venv(tmp_path / "venv2")
    refused = pip_install(
        python2, "--require-hashes", "--no-deps", "--only-binary", ":all:", "-r", str(out), cwd=tmp_path
    )
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert installed(python2) == {}


@pytest.mark.network
def test_wheelhouse_packages_travel_with_the_export(tmp_path):
    from tests.unit.test_resolve import make_wheel, sha256_of

    wheel = make_wheel(tmp_path / "house", "labtool", "0.3.0")
    lock = python_lock(
        m.PythonPackage(name="six", version="1.16.0"),
        m.PythonPackage(
            name="labtool", version="0.3.0", source="url", url=wheel.as_uri(), archive_hash="sha256:" + sha256_of(wheel)
        ),
    )
    lock_path = tmp_path / "envlock.lock"
    write_lock(lock, lock_path)
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    for fmt, name in (("requirements", "requirements.txt"), ("pylock", "pylock.toml")):
        result = run_envlock(
            "export", fmt, str(lock_path), "-o", str(export_dir / name), "--find-links", str(tmp_path / "house")
        )
        assert result.returncode == 0, result.stderr
    assert (export_dir / "wheels" / wheel.name).is_file()
    assert f'path = "wheels/{wheel.name}"' in (export_dir / "pylock.toml").read_text()
    requirement_lines = [
        line for line in (export_dir / "requirements.txt").read_text().splitlines() if not line.startswith("#")
    ]
    assert not any(str(tmp_path) in line or "file:" in line for line in requirement_lines)  # nothing machine-local
    assert "--find-links wheels" in requirement_lines
    shutil.rmtree(tmp_path / "house")  # the export must not depend on the original wheelhouse

    python = fresh_venv(tmp_path / "venv")
    done = pip_install(
        python, "--require-hashes", "--no-deps", "--only-binary", ":all:", "-r", "requirements.txt", cwd=export_dir
    )
    assert done.returncode == 0, done.stderr
    assert installed(python) == {"labtool": "0.3.0", "six": "1.16.0"}
    python2 = fresh_venv(tmp_path / "venv2")
    done = pip_install(python2, "-r", "pylock.toml", cwd=export_dir)
    assert done.returncode == 0, done.stderr
    assert installed(python2) == {"labtool": "0.3.0", "six": "1.16.0"}


@pytest.mark.network
def test_packages_that_cannot_be_pinned_are_listed_and_exit_1(tmp_path):
    lock = python_lock(
        m.PythonPackage(name="six", version="1.16.0"),
        m.PythonPackage(name="mine", version="0.1", source="editable", url="file:///src/mine"),
        m.PythonPackage(name="torch", version="2.3.0+cu121"),
    )
    lock_path = tmp_path / "envlock.lock"
    write_lock(lock, lock_path)
    out = tmp_path / "requirements.txt"
    result = run_envlock("export", "requirements", str(lock_path), "-o", str(out))
    assert result.returncode == 1
    assert "not exported: mine 0.1: installed from a local editable checkout" in result.stderr
    assert "not exported: torch 2.3.0+cu121: https://download.pytorch.org/whl/cu121 is unreachable" in result.stderr
    text = out.read_text()
    assert "six==1.16.0" in text
    assert re.search(r"^# Left out .*: mine, torch$", text, re.M)
    assert "torch==" not in text and "mine" not in text.split("# Left out")[1].split("\n", 1)[1]


def test_pylock_output_must_be_named_as_pep751_requires(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    result = run_envlock("export", "pylock", str(lock_path), "-o", str(tmp_path / "locked.toml"))
    assert result.returncode == 2
    assert "pylock.toml or pylock.<name>.toml" in result.stderr
    assert not (tmp_path / "locked.toml").exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "--index-url"),
        ("name", "six\n--extra-index-url https://evil.example/simple"),
        ("version", "1.0; --hash=sha256:00"),
        ("url", "https://evil.example/six.whl --trusted-host evil.example"),
        ("sha256", "--no-require-hashes"),
    ],
)
def test_requirement_lines_refuse_smuggled_options(field, value):
    # THREATS.md C1/C2: a value that is not a name, version, URL or hash never reaches the file.
    from envlock.errors import FormatError
    from envlock.formats.export_requirements import requirement_line
    from envlock.resolve import Pin

    pin = Pin(
        name="six",
        version="1.16.0",
        filename="six-1.16.0-py2.py3-none-any.whl",
        sha256=SIX_SHA,
        kind="wheel",
        url="https://files.example/six-1.16.0-py2.py3-none-any.whl",
        index="https://other.example/simple",
    )
    with pytest.raises(FormatError):
        requirement_line(dataclasses_replace(pin, **{field: value}), "https://pypi.org/simple")


def dataclasses_replace(obj, **changes):
    from envlock import records

    return records.replace(obj, **changes)


# --- conda -------------------------------------------------------------------------------


def test_conda_explicit_round_trip_of_a_real_conda_lock_file(tmp_path, shared_dir):
    source = shared_dir / "corpus" / "conda_lock" / "conda-linux-64.zlib.lock"
    imported = tmp_path / "imported.lock"
    result = run_envlock("import", "conda-explicit", str(source), "-o", str(imported))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "explicit.txt"
    exported = run_envlock("export", "conda-explicit", str(imported), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    original = sorted(line for line in source.read_text().splitlines() if line.startswith("https://"))
    ours = out.read_text().splitlines()
    assert "@EXPLICIT" in ours and "# platform: linux-64" in ours
    assert sorted(line for line in ours if line.startswith("https://")) == original


def conda_lock_value() -> m.Lock:
    return m.Lock(
        conda=m.CondaSection(
            packages=(
                m.CondaPackage(
                    name="python",
                    version="3.11.7",
                    build="hab00c5b_1_cpython",
                    channel="conda-forge",
                    subdir="linux-64",
                    url="https://conda.anaconda.org/conda-forge/linux-64/python-3.11.7-hab00c5b_1_cpython.conda",
                    md5="27cf681282c11dba7b0b1fd266e8f289",
                ),
                m.CondaPackage(
                    name="numpy", version="1.26.4", build="py311h64a7726_0", channel="conda-forge", subdir="linux-64"
                ),
            )
        ),
        python=m.PythonSection(
            version="3.11.7",
            packages=(
                m.PythonPackage(name="numpy", version="1.26.4", installer="conda"),
                m.PythonPackage(name="six", version="1.16.0", installer="pip"),
            ),
        ),
    )


def test_conda_env_and_explicit_from_a_conda_lock(tmp_path):
    import yaml

    lock_path = tmp_path / "envlock.lock"
    write_lock(conda_lock_value(), lock_path)
    env_file = tmp_path / "environment.yml"
    result = run_envlock("export", "conda-env", str(lock_path), "-o", str(env_file), "--name", "paper")
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(env_file.read_text())
    assert document == {
        "name": "paper",
        "channels": ["conda-forge"],
        "dependencies": [
            "conda-forge::numpy=1.26.4=py311h64a7726_0",
            "conda-forge::python=3.11.7=hab00c5b_1_cpython",
            "pip",
            {"pip": ["six==1.16.0"]},
        ],
    }
    explicit = tmp_path / "explicit.txt"
    result = run_envlock("export", "conda-explicit", str(lock_path), "-o", str(explicit))
    assert result.returncode == 1  # numpy has no URL in the lock
    assert "not exported: numpy: the lock records no download URL for it" in result.stderr
    assert (
        "https://conda.anaconda.org/conda-forge/linux-64/python-3.11.7-hab00c5b_1_cpython.conda#27cf681282c11dba7b0b1fd266e8f289"
        in explicit.read_text()
    )


@pytest.mark.parametrize("fmt", ["conda-explicit", "conda-env"])
def test_conda_export_of_a_lock_without_conda_is_a_clear_error(tmp_path, fmt):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    result = run_envlock("export", fmt, str(lock_path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "this lock has no conda layer" in result.stderr
    assert "hint: export its Python packages instead" in result.stderr
    assert not (tmp_path / "out").exists()


# --- Apptainer ---------------------------------------------------------------------------


def test_apptainer_definition_quotes_environment_values_for_sh(tmp_path):
    from envlock.formats.export_apptainer import ApptainerFiles, render_apptainer

    hostile = "x'; echo pwned; '$(id)`id`\"\\"
    lock = python_lock(runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": "4", "CUBLAS_WORKSPACE_CONFIG": hostile}))
    lock = m.Lock(**{**{f: getattr(lock, f) for f in ("python", "os", "runtime")}, "fingerprint": "sha256:" + "f" * 64})
    text = render_apptainer(lock, ApptainerFiles(requirements="envlock.requirements.txt"), def_name="envlock.def")
    assert text.splitlines()[0] == "# Generated by envlock; do not edit it by hand."
    assert "\nBootstrap: docker\nFrom: python:3.11.7-slim-bookworm\n" in text
    assert "    org.envlock.fingerprint sha256:" + "f" * 64 in text
    assert "--require-hashes --no-deps --only-binary :all: -r /opt/envlock/envlock.requirements.txt" in text
    # %environment is sourced by /bin/sh inside the container: run that text with sh and read the values back.
    environment = text.split("%environment\n", 1)[1].split("\n%", 1)[0]
    probe = subprocess.run(
        ["/bin/sh", "-c", environment + '\nprintf "%s\\n%s" "$OMP_NUM_THREADS" "$CUBLAS_WORKSPACE_CONFIG"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert probe.stdout == "4\n" + hostile
    assert "pwned" not in probe.stdout.replace(hostile, "")


def test_apptainer_refuses_an_injected_base_image(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(python_lock(), lock_path)
    result = run_envlock(
        "export",
        "apptainer",
        str(lock_path),
        "-o",
        str(tmp_path / "env.def"),
        "--base-image",
        "python:3.11\n%post\n rm -rf /",
    )
    assert result.returncode == 2
    assert "not an image reference" in result.stderr
    assert not (tmp_path / "env.def").exists()


def test_apptainer_template_ships_in_the_wheel_layout():
    # pyproject force-includes templates/ as envlock/templates; the renderer reads it by name.
    from envlock.replay.templates import read_template

    template = read_template("apptainer.def.tmpl")
    assert set(re.findall(r"\{\{ ([a-z_]+) \}\}", template)) == {
        "command",
        "def_name",
        "notes",
        "base_image",
        "labels",
        "files",
        "post",
        "environment",
    }


@pytest.mark.network
def test_apptainer_export_writes_its_requirements_beside_it(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    out = tmp_path / "hpc" / "paper.def"
    out.parent.mkdir()
    result = run_envlock("export", "apptainer", str(lock_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    requirements = out.parent / "paper.requirements.txt"
    assert f"--hash=sha256:{SIX_SHA}" in requirements.read_text()
    assert "    paper.requirements.txt /opt/envlock/paper.requirements.txt" in out.read_text()


# --- Dockerfile (the replay's renderer) -----------------------------------------------------


@pytest.mark.network
def test_dockerfile_export_writes_the_replay_build_context(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(small_lock(), lock_path)
    out = tmp_path / "ctx" / "Dockerfile"
    result = run_envlock("export", "dockerfile", str(lock_path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("#")
    assert "FROM " in text
    written = sorted(str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p.is_file())
    assert "Dockerfile" in written and len(written) > 1
    hashed = "".join(p.read_text(errors="replace") for p in out.parent.rglob("*.txt"))
    assert SIX_SHA in hashed


def test_apptainer_for_a_conda_lock_installs_the_explicit_file(tmp_path):
    lock = conda_lock_value()
    lock = m.Lock(conda=lock.conda)  # conda only: no Python packages to resolve, so no network
    lock_path = tmp_path / "envlock.lock"
    write_lock(lock, lock_path)
    out = tmp_path / "conda.def"
    result = run_envlock("export", "apptainer", str(lock_path), "-o", str(out))
    assert result.returncode == 1  # numpy has no URL in the lock: listed, and left out of the explicit file
    assert "not exported: numpy" in result.stderr
    text = out.read_text()
    assert "From: mambaorg/micromamba:latest" in text
    assert "    conda.conda-explicit.txt /opt/envlock/conda.conda-explicit.txt" in text
    assert "micromamba install --yes --name base --file /opt/envlock/conda.conda-explicit.txt" in text
    assert "pin it by digest" in text
    assert "@EXPLICIT" in (tmp_path / "conda.conda-explicit.txt").read_text()


def test_unwritable_output_and_missing_wheelhouse_are_errors_not_tracebacks(tmp_path):
    lock_path = tmp_path / "envlock.lock"
    write_lock(conda_lock_value(), lock_path)
    missing_dir = run_envlock(
        "export", "conda-env", str(lock_path), "-o", str(tmp_path / "no" / "such" / "environment.yml")
    )
    assert missing_dir.returncode == 2
    assert "no/such" in missing_dir.stderr and "Traceback" not in missing_dir.stderr
    no_house = run_envlock(
        "export", "requirements", str(lock_path), "-o", str(tmp_path / "r.txt"), "--find-links", str(tmp_path / "nope")
    )
    assert no_house.returncode == 2
    assert "--find-links" in no_house.stderr and "not a directory" in no_house.stderr
    assert not (tmp_path / "r.txt").exists()
