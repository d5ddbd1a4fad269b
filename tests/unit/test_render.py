"""Rendering the build context: whole expected Dockerfiles, determinism, CA handling, layer order.

The expected Dockerfiles in tests/data/dockerfiles/ were written once from the
renderer's output after reading them line by line; the tests never rewrite
them.  A deliberate change to the output means editing those files by hand.
"""

from __future__ import annotations

import json

import pytest

from envlock.errors import ReplayError
from envlock.lockfile import parse_lock
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.render import render_context, render_dockerfile, render_requirements
from envlock.replay.templates import fill, read_template
from envlock.replay.uv_tool import UvBinary
from tests.unit.replay_data import DOCKERFILES, lock, pins

CA = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
HEADER = "# envlock replay: generated from a lockfile by envlock; do not edit by hand"


@pytest.mark.parametrize(
    "lock_name, pins_name",
    [
        ("cpu", "cpu"),
        ("cuda-system", "cuda-system"),
        ("conda", "conda"),
        ("torch-cu121", "torch-cu121"),
        ("torch-cu121", "torch-cu121-wheelhouse"),
    ],
)
def test_whole_dockerfile_matches_the_expected_file(lock_name, pins_name):
    expected = (DOCKERFILES / f"{pins_name}.Dockerfile").read_text(encoding="utf-8")
    rendered = render_dockerfile(plan_replay(lock(lock_name), ReplayOptions(pins=pins(pins_name))))
    assert rendered == expected


def _stages(text: str) -> tuple[list[str], list[str]]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    second = [i for i, line in enumerate(lines) if line.startswith("FROM ")][1]
    return lines[:second], lines[second:]


def test_the_same_plan_renders_the_same_bytes():
    first = render_context(plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"))))
    second = render_context(plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"))))
    assert dict(first.items()) == dict(second.items())
    assert list(first.files) == sorted(first.files)


def test_context_files():
    context = render_context(plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"))))
    assert sorted(context.files) == [
        "Dockerfile",
        "envlock/envlock.lock",
        "envlock/os_packages.py",
        "envlock/plan.json",
        "envlock/python/requirements-1.txt",
    ]
    requirements = context.files["envlock/python/requirements-1.txt"].decode()
    assert requirements.splitlines()[2:] == [
        "idna==3.7 --hash=sha256:82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0",
        "numpy==1.26.4 --hash=sha256:666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5",
        "pip==24.0 --hash=sha256:ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc",
        "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    ]
    assert requirements.startswith("# envlock: hash-pinned install set, group 1 of 1, from https://pypi.org/simple.")
    # the lock travels in the image, unchanged in content
    assert parse_lock(context.files["envlock/envlock.lock"]).lock == lock("cpu")
    # the OS script is the template, verbatim
    assert context.files["envlock/os_packages.py"].decode() == read_template("os_packages.py")
    plan_json = json.loads(context.files["envlock/plan.json"])
    assert plan_json["fingerprint"] == "sha256:9645f9b239afb624e0840afac3a64bb05264c445b53081eb1eef8f195fc51594"
    assert {f["path"] for f in plan_json["findings"]} >= {"python.version", "cpu", "os.packages"}
    assert context.wheelhouse == {} and context.secret_ids == ()


def test_wheelhouse_files_are_listed_for_the_caller_to_copy():
    context = render_context(plan_replay(lock("torch-cu121"), ReplayOptions(pins=pins("torch-cu121-wheelhouse"))))
    assert context.wheelhouse == {
        "envlock/wheels/torch-2.1.2+cu121-cp311-cp311-linux_x86_64.whl": "/wheelhouse/torch-2.1.2+cu121-cp311-cp311-linux_x86_64.whl"
    }


def test_ca_in_stage_mode_is_only_in_the_first_stage():
    plan = plan_replay(lock("cuda-system"), ReplayOptions(pins=pins("cuda-system"), ca_mode="stage", ca_cert=CA))
    context = render_context(plan)
    assert context.files["envlock/ca.crt"] == CA
    first, final = _stages(context.dockerfile)
    assert "COPY envlock/ca.crt /tmp/envlock/ca.crt" in first
    assert any('"--cert", "/tmp/envlock/ca.crt"' in line for line in first)
    assert any("Acquire::https::CAInfo=/tmp/envlock/ca.crt" in line for line in first)
    assert not any("ca.crt" in line or "CAInfo" in line or "--cert" in line for line in final)
    # the final stage takes nothing from stage 1 but the virtual environment
    assert [line for line in final if "--from=" in line] == [
        "COPY --from=envlock-python /opt/envlock/venv /opt/envlock/venv"
    ]


def test_ca_in_secret_mode_is_a_buildkit_secret_mount_and_never_copied():
    plan = plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"), ca_mode="secret"))
    context = render_context(plan)
    assert "envlock/ca.crt" not in context.files
    assert context.secret_ids == ("envlock-ca",)
    text = context.dockerfile
    mount = "RUN --mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca "
    pip_lines = [line for line in text.splitlines() if '"pip", "install"' in line]
    assert pip_lines and all(
        line.startswith(mount) and '"--cert", "/run/secrets/envlock-ca"' in line for line in pip_lines
    )
    os_line = next(line for line in text.splitlines() if 'os_packages.py", "--report' in line)
    assert os_line.startswith(mount) and '"--ca-file", "/run/secrets/envlock-ca"' in os_line
    assert "COPY envlock/ca.crt" not in text


def test_layer_order_keeps_the_cache():
    text = render_dockerfile(plan_replay(lock("cuda-system"), ReplayOptions(pins=pins("cuda-system"))))
    _, final = _stages(text)
    kinds = []
    for line in final[1:]:
        if "apt-get update" in line:
            kinds.append("python-bootstrap")
        elif "os_packages.py" in line:
            kinds.append("os")
        elif line.startswith("COPY --from="):
            kinds.append("python-packages")
        elif line.startswith("ENV "):
            kinds.append("env")
        elif line.startswith("COPY envlock/envlock.lock"):
            kinds.append("lock")
        elif line.startswith("LABEL "):
            kinds.append("labels")
    assert kinds == ["python-bootstrap", "os", "os", "python-packages", "env", "env", "lock", "labels"]


def test_one_copy_and_install_per_index_group():
    from envlock.resolve import Pin, PinSet

    recorded = pins("torch-cu121")
    torch = Pin(
        "torch",
        "2.1.2+cu121",
        "torch-2.1.2+cu121-cp311-cp311-linux_x86_64.whl",
        "2" * 64,
        "wheel",
        url="https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp311-cp311-linux_x86_64.whl",
        index="https://download.pytorch.org/whl/cu121",
    )
    context = render_context(
        plan_replay(lock("torch-cu121"), ReplayOptions(pins=PinSet(pins=recorded.pins + (torch,))))
    )
    installs = [line for line in context.dockerfile.splitlines() if '"pip", "install"' in line]
    assert len(installs) == 2
    assert (
        '"--index-url", "https://download.pytorch.org/whl/cu121", "-r", "/tmp/envlock/python/requirements-1.txt"'
        in installs[0]
    )
    assert '"--index-url", "https://pypi.org/simple", "-r", "/tmp/envlock/python/requirements-2.txt"' in installs[1]
    assert "--extra-index-url" not in context.dockerfile  # THREATS.md C7
    for line in installs:
        for flag in ('"--require-hashes"', '"--no-deps"', '"--only-binary", ":all:"', '"--isolated"'):
            assert flag in line  # THREATS.md C6
    assert context.files["envlock/python/requirements-1.txt"].decode().splitlines()[2:] == [
        "torch==2.1.2+cu121 --hash=sha256:" + "2" * 64
    ]


def test_strict_mode_refuses_a_tag_and_accepts_a_digest():
    plan = plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"), require_digest=True))
    with pytest.raises(ReplayError, match="strict mode refuses the base image python:3.11-slim-bookworm"):
        render_dockerfile(plan)
    digest = "sha256:" + "0f" * 32
    text = render_dockerfile(plan.with_base_digest(digest))
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == [
        f"FROM python:3.11-slim-bookworm@{digest} AS envlock-python",
        f"FROM python:3.11-slim-bookworm@{digest}",
    ]
    assert f'org.opencontainers.image.base.digest="{digest}"' in text
    # digest-only replay (THREATS.md B4): the user's reference is used as given
    by_digest = plan_replay(
        lock("cpu"), ReplayOptions(pins=pins("cpu"), base_image=f"python@{digest}", require_digest=True)
    )
    assert render_dockerfile(by_digest).splitlines()[6] == f"FROM python@{digest} AS envlock-python"


def test_line_one_is_the_fixed_header_for_every_lock():
    for name in ("cpu", "cuda-system", "conda", "torch-cu121"):
        assert render_dockerfile(plan_replay(lock(name))).splitlines()[0] == HEADER
    assert "=" not in HEADER  # a parser directive is `# key=value`


def test_template_filling_is_strict():
    assert fill("a {{ x }} b", {"x": "{{ y }}"}) == "a {{ y }} b"  # values are not expanded again
    with pytest.raises(KeyError, match="missing values: \\['x'\\]"):
        fill("a {{ x }}", {})
    with pytest.raises(KeyError, match="values without placeholders: \\['y'\\]"):
        fill("a {{ x }}", {"x": "1", "y": "2"})


def test_requirements_never_start_with_an_option():
    from envlock.replay.plan import InstallGroup, Requirement

    group = InstallGroup("index", "https://pypi.org/simple", True, (Requirement("-e", "1.0", "0" * 64),))
    with pytest.raises(ReplayError, match="read as an option"):
        render_requirements(group, 1, 1)


# --- uv (issue 13) -------------------------------------------------------------------------

UV = UvBinary("0.13.9", "x86_64", "d7" * 32, "/cache/uv")


def _uv_plan(name="cpu", pins_name=None, **options):
    return plan_replay(lock(name), ReplayOptions(pins=pins(pins_name or name), uv=UV, **options))


@pytest.mark.parametrize(
    "expected, lock_name, pins_name, options",
    [
        ("cpu-uv", "cpu", "cpu", {"ca_mode": "secret"}),
        ("cpu-uv-sdk", "cpu", "cpu", {"builder": "sdk", "ca_mode": "stage", "ca_cert": CA}),
        ("torch-cu121-wheelhouse-uv", "torch-cu121", "torch-cu121-wheelhouse", {}),
    ],
)
def test_whole_uv_dockerfile_matches_the_expected_file(expected, lock_name, pins_name, options):
    wanted = (DOCKERFILES / f"{expected}.Dockerfile").read_text(encoding="utf-8")
    assert render_dockerfile(_uv_plan(lock_name, pins_name, **options)) == wanted


def test_buildkit_with_uv_is_one_stage_and_uv_is_in_no_layer():
    context = render_context(_uv_plan(ca_mode="secret"))
    lines = [line for line in context.dockerfile.splitlines() if line and not line.startswith("#")]
    # The image is the first stage continued; the fetch stages branch off it and ship nothing.
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM python:3.11-slim-bookworm AS envlock-venv",
        "FROM envlock-venv AS envlock-fetch-1-2",  # the first layer downloads its own files
        "FROM envlock-venv",
    ]
    assert not any(line.startswith("COPY --from") for line in lines)  # nothing copied between stages
    # uv and the requirements files are mounts, never COPY'd; the executable travels with mode 0755
    assert not any(line.startswith("COPY") and ("envlock/uv" in line or "requirements" in line) for line in lines)
    assert context.executables == {"envlock/uv": "/cache/uv"}
    installs = [line for line in lines if '"pip", "install"' in line and '"envlock-fetch"' not in line]
    assert len(installs) == 2  # numpy's compiled wheel, then the pure-Python ones
    mounts = installs[0].split(" [", 1)[0]
    assert "--mount=type=bind,source=envlock/uv,target=/tmp/envlock/bin/uv" in mounts
    assert "--mount=type=secret,id=envlock-ca,target=/run/secrets/envlock-ca" in mounts
    assert "--mount=type=cache,id=envlock-uv,target=/tmp/envlock/uv-cache" in mounts
    # OS packages come before the Python layers, the lock and labels after them
    order = [i for i, line in enumerate(lines) if 'os_packages.py", "--report' in line or line in installs]
    assert order == sorted(order) and "os_packages" in lines[order[0]]


def test_each_downloaded_layer_has_a_fetch_stage_that_its_install_waits_for():
    text = render_dockerfile(_uv_plan("torch-cu121", "torch-cu121-wheelhouse"))
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    stages: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        if line.startswith("FROM "):
            current = line.split(" AS ")[-1] if " AS " in line else "image"
        stages.setdefault(current, []).append(line)
    # The wheelhouse layer (local files) fetches nothing; each index layer has its own fetch stage.
    assert sorted(stages) == ["envlock-fetch-2-1", "envlock-fetch-2-2", "envlock-venv", "image"]
    for name in ("2-1", "2-2"):
        (fetch,) = stages[f"envlock-fetch-{name}"][1:]
        mounts, command = fetch.split(" [", 1)
        argv = json.loads("[" + command)
        assert argv[:2] == ["/bin/sh", "-c"] and argv[3] == "envlock-fetch"
        # The script is fixed text: the files arrive as the mounted requirements, uv's line as "$@".
        assert "requirements" not in argv[2] and "http" not in argv[2] and '"$@" --target' in argv[2]
        assert argv[4:7] == ["/tmp/envlock/bin/uv", "pip", "install"]
        assert "--compile-bytecode" not in argv and argv[argv.index("--link-mode") + 1] == "hardlink"
        assert argv[-2:] == ["-r", f"/tmp/envlock/python/requirements-{name}.txt"]
        assert "--mount=type=cache,id=envlock-uv,target=/tmp/envlock/uv-cache" in mounts
        (install,) = [line for line in stages["image"] if f"requirements-{name}.txt" in line]
        assert f"--mount=type=bind,from=envlock-fetch-{name},source=/tmp/envlock/fetched" in install
        assert "--compile-bytecode" in install
    (local,) = [line for line in stages["image"] if "requirements-1-1.txt" in line]
    assert "from=envlock-fetch" not in local


def test_legacy_builder_with_uv_copies_uv_into_the_unshipped_stage_only():
    text = render_dockerfile(_uv_plan(builder="sdk", ca_mode="stage", ca_cert=CA))
    first, final = _stages(text)
    assert "COPY envlock/uv /tmp/envlock/bin/uv" in first
    assert not any("--mount" in line for line in first + final)  # the legacy builder has no mounts
    assert not any("uv" in line for line in final if not line.startswith(("LABEL", "ENV")))
    assert [line for line in final if "--from=" in line] == [
        "COPY --from=envlock-python /opt/envlock/venv /opt/envlock/venv"
    ]


def test_a_lock_without_pip_keeps_the_bootstrapped_pip_and_drops_setuptools():
    from envlock import records
    from envlock.resolve import PinSet

    recorded = pins("cpu")
    without_pip = PinSet(pins=tuple(p for p in recorded.pins if p.name != "pip"))
    base = lock("cpu")
    base = records.replace(
        base,
        python=records.replace(base.python, packages=tuple(p for p in base.python.packages if p.name != "pip")),
    )
    text = render_dockerfile(plan_replay(base, ReplayOptions(pins=without_pip, uv=UV)))
    assert 'RUN ["python3", "-m", "venv", "/opt/envlock/venv"]' in text  # ensurepip: `pip` works in the image
    assert '"pip", "uninstall", "--no-config", "--python", "/opt/envlock/venv/bin/python", "setuptools"]' in text
    with_pip = render_dockerfile(_uv_plan())
    assert 'RUN ["python3", "-m", "venv", "--without-pip", "/opt/envlock/venv"]' in with_pip
    assert "uninstall" not in with_pip


def test_a_changed_group_leaves_the_other_groups_lines_unchanged():
    from envlock.resolve import PinSet

    recorded = pins("torch-cu121-wheelhouse")
    before = render_dockerfile(_uv_plan("torch-cu121", "torch-cu121-wheelhouse")).splitlines()
    changed = PinSet(
        pins=tuple(
            records_replace(p, sha256="9" * 64) if p.index == "https://pypi.org/simple" and p.name == "pip" else p
            for p in recorded.pins
        )
    )
    after_plan = plan_replay(lock("torch-cu121"), ReplayOptions(pins=changed, uv=UV))
    after = render_dockerfile(after_plan).splitlines()
    # The Dockerfile does not name files: each group's RUN line is the same, and only
    # the changed group's bind-mounted requirements file differs (its cache key).
    assert before == after
    old = render_context(_uv_plan("torch-cu121", "torch-cu121-wheelhouse")).files
    new = render_context(after_plan).files
    assert old["envlock/python/requirements-1-1.txt"] == new["envlock/python/requirements-1-1.txt"]
    assert old["envlock/python/requirements-2-1.txt"] == new["envlock/python/requirements-2-1.txt"]
    assert old["envlock/python/requirements-2-2.txt"] != new["envlock/python/requirements-2-2.txt"]
    assert "pip==" in new["envlock/python/requirements-2-2.txt"].decode()


def test_large_and_compiled_wheels_get_layers_before_the_pure_ones():
    from envlock.replay.plan import InstallGroup, Requirement
    from envlock.replay.render import install_layers

    mb = 1024 * 1024
    group = InstallGroup(
        "index",
        "https://pypi.org/simple",
        True,
        (
            Requirement("idna", "3.7", "1" * 64, filename="idna-3.7-py3-none-any.whl", size=mb),
            Requirement(
                "numpy", "2.2.6", "2" * 64, filename="numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.whl", size=16 * mb
            ),
            Requirement(
                "scipy", "1.15.3", "3" * 64, filename="scipy-1.15.3-cp311-cp311-manylinux_2_17_x86_64.whl", size=37 * mb
            ),
            Requirement(
                "torch",
                "2.13.0",
                "4" * 64,
                filename="torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                size=900 * mb,
            ),
            Requirement(
                "transformers", "4.57.1", "5" * 64, filename="transformers-4.57.1-py3-none-any.whl", size=11 * mb
            ),
            Requirement("mystery", "1.0", "6" * 64),  # no file name known: treated as compiled
            Requirement("sympy", "1.14.0", "7" * 64, filename="sympy-1.14.0-py3-none-any.whl", size=6 * mb),
            Requirement("six", "1.17.0", "8" * 64, filename="six-1.17.0-py2.py3-none-any.whl", size=11_000),
        ),
    )
    names = [[r.name for r in layer] for layer in install_layers(group)]
    # Costly first (a change rebuilds the layers after its own): large files, compiled wheels,
    # large pure-Python wheels, then the small pure ones together.
    assert names == [["torch"], ["scipy"], ["numpy", "mystery"], ["transformers"], ["sympy"], ["idna", "six"]]
    small = InstallGroup("index", "https://pypi.org/simple", True, group.requirements[:1])
    assert [[r.name for r in layer] for layer in install_layers(small)] == [["idna"]]


def records_replace(item, **changes):
    from envlock import records

    return records.replace(item, **changes)
