"""The conda layer of a replay plan, from real conda-lock files (their URLs are unreachable here).

Expected values are read from the corpus YAML itself with PyYAML, not from
envlock's importer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from envlock import records
from envlock.errors import ReplayError
from envlock.lockfile import load_lock
from envlock.lockfile import model as m
from envlock.replay import conda as c
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.render import render_context
from envlock.resolve import resolve_lock
from tests.conftest import run_envlock

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "conda_lock"
CLAY = "conda-lock.clay-model-cuda118.yml"
PIP_DEPS = "conda-lock.install-with-pip-deps.yml"
GH155 = "conda-lock.pypi-resolve-gh155.yml"


def _imported(tmp_path: Path, name: str, fmt: str = "conda-lock", *args: str) -> m.Lock:
    out = tmp_path / (name + ".lock")
    result = run_envlock("import", fmt, str(CORPUS / name), "-o", str(out), *args)
    assert result.returncode == 0, result.stderr
    return load_lock(out).lock


def _corpus_conda(name: str, platform: str = "linux-64") -> list[dict]:
    document = yaml.safe_load((CORPUS / name).read_text())
    return [p for p in document["package"] if p["manager"] == "conda" and p["platform"] == platform]


def _by_path(plan) -> dict[str, list]:
    found: dict[str, list] = {}
    for item in plan.findings:
        found.setdefault(item.path, []).append(item)
    return found


def test_conda_lock_plans_every_package_from_its_url(tmp_path):
    plan = plan_replay(_imported(tmp_path, CLAY))
    expected = {p["url"]: p["hash"]["sha256"] for p in _corpus_conda(CLAY)}
    assert plan.conda is not None and len(expected) == 421
    assert {a.url: a.sha256 for a in plan.conda.archives} == expected
    python = next(p for p in _corpus_conda(CLAY) if p["name"] == "python")
    assert plan.conda.python_version == python["version"]
    assert plan.interpreter == "/opt/envlock/conda/bin/python"
    context = render_context(plan)
    listed = json.loads(context.files["envlock/conda/packages.json"])
    names = {p["url"]: p["name"] for p in _corpus_conda(CLAY)}
    assert [p["url"] for p in listed["packages"]] == sorted(expected, key=names.__getitem__)
    dockerfile = context.dockerfile
    assert "COPY --from=envlock-python /opt/envlock/conda /opt/envlock/conda" in dockerfile
    assert 'ENV PATH="/opt/envlock/conda/bin:${PATH}"' in dockerfile
    assert "/opt/envlock/venv" not in dockerfile
    assert f"py-rattler==0.28.0 --hash=sha256:{c.RATTLER_SHA256}" in context.files["envlock/conda/rattler.txt"].decode()
    # No lock value is in a RUN line: the URLs travel as data in packages.json only.
    assert "anaconda.org" not in dockerfile


def test_pip_packages_go_on_top_of_the_conda_python(tmp_path):
    lock = _imported(tmp_path, PIP_DEPS)
    pip_names = {
        p["name"]
        for p in yaml.safe_load((CORPUS / PIP_DEPS).read_text())["package"]
        if p["manager"] == "pip" and p["platform"] == "linux-64"
    }
    assert {p.name for p in c.pip_layer_lock(lock).python.packages} == pip_names
    plan = plan_replay(lock)
    assert plan.conda is not None
    # The pip layer is not resolved here (no network): reported, and the conda python stays the interpreter.
    paths = _by_path(plan)
    assert paths["python.version"][0].status == "exact"
    assert "3.12" in paths["python.version"][0].message


def test_conda_lock_pip_entries_pin_their_exact_files_so_replay_resolves_nothing(tmp_path):
    lock = _imported(tmp_path, PIP_DEPS)
    listed = {
        p["name"]: p
        for p in yaml.safe_load((CORPUS / PIP_DEPS).read_text())["package"]
        if p["manager"] == "pip" and p["platform"] == "linux-64"
    }
    pinned = {p.name: p for p in c.pip_layer_lock(lock).python.packages}
    for name, entry in listed.items():
        assert pinned[name].file_url == entry["url"]
        assert pinned[name].file_sha256 == "sha256:" + entry["hash"]["sha256"]
        assert pinned[name].file == entry["url"].rsplit("/", 1)[1]
    # No index answers (a closed loopback port): the pinned URLs are the record, nothing is resolved.
    pins = resolve_lock(c.pip_layer_lock(lock), index_url="http://127.0.0.1:9/simple", timeout=2)
    plan = plan_replay(lock, ReplayOptions(base_image="debian:bookworm", pins=pins))
    planned = {r.name: (r.url, r.sha256) for group in plan.install_groups for r in group.requirements}
    assert planned == {name: (entry["url"], entry["hash"]["sha256"]) for name, entry in listed.items()}


def test_other_platform_is_a_blocker_and_nothing_is_installed(tmp_path):
    lock = _imported(tmp_path, GH155, "conda-lock", "--platform", "osx-64")
    plan = plan_replay(lock, ReplayOptions(base_image="debian:bookworm"))
    assert plan.conda is None
    blockers = [f for f in _by_path(plan)["conda.packages"] if f.severity == "blocker"]
    assert any("osx-64" in f.message and "linux-64" in f.message for f in blockers)
    assert "envlock/conda" not in "".join(render_context(plan).files)


def _with_url(lock: m.Lock, name: str, url: str) -> m.Lock:
    packages = tuple(records.replace(p, url=url) if p.name == name else p for p in lock.conda.packages)
    return records.replace(lock, conda=records.replace(lock.conda, packages=packages))


@pytest.mark.parametrize(
    "url",
    [
        "https://conda.anaconda.org/t/tk-SECRET123/private/linux-64/zlib-1.2.13-hd590300_5.conda",
        "https://alice:SECRET123@conda.example.org/private/linux-64/zlib-1.2.13-hd590300_5.conda",
        "https://${CONDA_USER}:${SECRET123}@conda.example.org/private/linux-64/zlib-1.2.13-hd590300_5.conda",
    ],
)
def test_channel_with_credentials_is_a_finding_and_never_in_the_context(tmp_path, url):
    lock = _with_url(_imported(tmp_path, CLAY), "libzlib", url)
    plan = plan_replay(lock)
    assert plan.conda is None
    finding = _by_path(plan)["conda.packages[libzlib]"][0]
    assert "needs credentials" in finding.message and "--conda-channel-url" in finding.fix
    context = render_context(plan)
    assert not any(b"SECRET123" in data for path, data in context.items() if path != "envlock/envlock.lock")


def test_mirror_replaces_the_channel_but_the_lock_url_is_kept(tmp_path):
    lock = _imported(tmp_path, CLAY)
    plan = plan_replay(lock, ReplayOptions(conda_channel_url="https://mirror.example.org/cf/"))
    zlib = next(a for a in plan.conda.archives if a.name == "libzlib")
    original = next(p["url"] for p in _corpus_conda(CLAY) if p["name"] == "libzlib")
    assert zlib.url == "https://mirror.example.org/cf/linux-64/" + original.rsplit("/", 1)[1]
    assert zlib.locked_url == original


@pytest.mark.parametrize(
    "url", ["file:///etc", "https://u:p@mirror.example.org", "https://m.example.org/a b", "ftp://x"]
)
def test_bad_mirror_url_is_refused(tmp_path, url):
    with pytest.raises(ReplayError):
        plan_replay(_imported(tmp_path, CLAY), ReplayOptions(conda_channel_url=url))


def test_bad_mirror_url_exits_2_on_the_command_line(tmp_path):
    lock = tmp_path / "clay.lock"
    assert run_envlock("import", "conda-lock", str(CORPUS / CLAY), "-o", str(lock)).returncode == 0
    result = run_envlock("replay", str(lock), "--dry-run", "--conda-channel-url", "https://u:p@m.example.org")
    assert result.returncode == 2
    assert "credentials" in result.stderr and "Traceback" not in result.stderr


def test_explicit_list_without_python_is_not_replayed_half_way(tmp_path):
    lock = _imported(tmp_path, "conda-linux-64.zlib.lock", "conda-explicit")
    install, found = c.plan_conda(lock)
    assert install is None
    assert any(f.path == "conda.packages[python]" and f.severity == "blocker" for f in found)


def test_md5_only_archives_are_checked_by_md5_and_said_so(tmp_path):
    lock = _imported(tmp_path, CLAY)
    packages = tuple(records.replace(p, sha256=None) for p in lock.conda.packages)
    install, found = c.plan_conda(records.replace(lock, conda=records.replace(lock.conda, packages=packages)))
    expected = {p["url"]: p["hash"]["md5"] for p in _corpus_conda(CLAY)}
    assert {a.url: a.md5 for a in install.archives} == expected
    assert all(a.sha256 is None for a in install.archives)
    assert any("md5 only" in f.message for f in found)


def test_an_archive_gone_from_its_channel_is_a_blocker_naming_it(tmp_path):
    lock = _imported(tmp_path, CLAY)
    zlib = next(p for p in _corpus_conda(CLAY) if p["name"] == "libzlib")
    plan = plan_replay(lock, ReplayOptions(conda_unavailable=(c.CondaUnavailable(zlib["url"], 404),)))
    # Not replayed half-way: the conda layer is left out and everything else is planned (exit 1, not a failed build).
    assert plan.conda is None
    (finding,) = _by_path(plan)["conda.packages[libzlib]"]
    assert finding.severity == "blocker" and finding.status == "not-reproducible"
    build = zlib["build"] if "build" in zlib else zlib["url"].rsplit("-", 1)[1].split(".")[0]
    for part in (zlib["version"], build, zlib["url"], zlib["hash"]["sha256"], "HTTP 404", "gone"):
        assert part in finding.message, part
    assert "--conda-channel-url" in finding.fix and "envlock replay PACK" in finding.fix
    # Only that package is said to be gone; the layer as a whole is reported as not replayed.
    gone = [f.path for f in plan.findings if f.layer == "conda" and "gone" in f.message]
    assert gone == ["conda.packages[libzlib]"]
    assert any("is not replayed" in f.message for f in _by_path(plan)["conda.packages"])


def test_a_channel_answering_401_is_a_credentials_finding(tmp_path):
    lock = _imported(tmp_path, CLAY)
    zlib = next(p for p in _corpus_conda(CLAY) if p["name"] == "libzlib")
    plan = plan_replay(lock, ReplayOptions(conda_unavailable=(c.CondaUnavailable(zlib["url"], 401),)))
    (finding,) = _by_path(plan)["conda.packages[libzlib]"]
    assert "needs credentials" in finding.message and "HTTP 401" in finding.message
    assert "never writes credentials into a lock or an image" in finding.message
    assert "--conda-channel-url" in finding.fix and "${VAR}" in finding.why
    assert "proxy" not in finding.message


def test_a_403_names_a_refusing_proxy_as_the_other_cause(tmp_path):
    lock = _imported(tmp_path, CLAY)
    zlib = next(p for p in _corpus_conda(CLAY) if p["name"] == "libzlib")
    plan = plan_replay(lock, ReplayOptions(conda_unavailable=(c.CondaUnavailable(zlib["url"], 403),)))
    (finding,) = _by_path(plan)["conda.packages[libzlib]"]
    assert "needs credentials, or a proxy on the way refuses it" in finding.message
    assert "answered HTTP 403" in finding.message and "--conda-channel-url" in finding.fix


RATTLER_WHEEL = "py_rattler-0.28.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def _pack_files(plan, drop: str | None = None) -> c.CondaLocal:
    archives = tuple((a.filename, f"/scratch/conda/{a.filename}") for a in plan.conda.archives if a.name != drop)
    debs = ("/scratch/conda/installer/python3_3.11.2-1+b1_amd64.deb",)
    return c.CondaLocal(archives, f"/scratch/tools/{RATTLER_WHEEL}", debs)


def test_a_packs_conda_layer_is_built_from_its_files_with_no_network(tmp_path):
    lock = _imported(tmp_path, CLAY)
    online = plan_replay(lock)
    plan = plan_replay(lock, ReplayOptions(conda_local=_pack_files(online), base_image="debian:bookworm"))
    assert plan.conda is not None and plan.conda.local is not None
    context = render_context(plan)
    dockerfile = context.dockerfile
    # Nothing in the build stage reads a source, an index or a channel.
    assert "apt-get update" not in dockerfile and "--index-url" not in dockerfile and "anaconda.org" not in dockerfile
    assert "apt-get install -y --no-install-recommends -- /tmp/envlock/conda/installer/*.deb" in dockerfile
    assert '"--no-index", "--find-links", "/tmp/envlock/conda/rattler"' in dockerfile
    assert '"--local-dir", "/tmp/envlock/conda/pkgs"' in dockerfile
    # The pack's files become build-context files, each under a checked name.
    expected = {f"envlock/conda/pkgs/{p['url'].rsplit('/', 1)[1]}" for p in _corpus_conda(CLAY)}
    assert {k for k in context.wheelhouse if k.startswith("envlock/conda/pkgs/")} == expected
    assert context.wheelhouse[f"envlock/conda/rattler/{RATTLER_WHEEL}"] == f"/scratch/tools/{RATTLER_WHEEL}"
    assert "envlock/conda/installer/python3_3.11.2-1+b1_amd64.deb" in context.wheelhouse
    rattler = context.files["envlock/conda/rattler.txt"].decode()
    assert f"py-rattler==0.28.0 --hash=sha256:{c.RATTLER_SHA256}" in rattler and "wheelhouse" in rattler


def test_a_pack_without_one_archive_does_not_replay_the_conda_layer_half_way(tmp_path):
    lock = _imported(tmp_path, CLAY)
    online = plan_replay(lock)
    plan = plan_replay(lock, ReplayOptions(conda_local=_pack_files(online, drop="libzlib")))
    assert plan.conda is None
    (finding,) = _by_path(plan)["conda.packages[libzlib]"]
    assert "the pack does not carry" in finding.message and finding.severity == "blocker"


@pytest.mark.parametrize("name", [".hidden.deb", "a b.deb", "x.deb\nRUN rm", "a*.deb"])
def test_a_hostile_installer_deb_name_is_refused(tmp_path, name):
    lock = _imported(tmp_path, CLAY)
    online = plan_replay(lock)
    files = records.replace(_pack_files(online), installer_debs=(f"/scratch/{name}",))
    plan = plan_replay(lock, ReplayOptions(conda_local=files))
    with pytest.raises(ReplayError, match="not a .deb file name"):
        render_context(plan)


def _stage_one(dockerfile: str) -> list[str]:
    lines = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    second = [i for i, line in enumerate(lines) if line.startswith("FROM ")][1]
    return lines[:second]


def test_with_uv_the_installer_venv_has_no_pip_and_uv_installs_rattler(tmp_path):
    from envlock.replay.uv_tool import UvBinary

    lock = _imported(tmp_path, CLAY)
    uv = UvBinary("0.13.9", "x86_64", "d7" * 32, "/cache/uv")
    mount = "--mount=type=bind,source=envlock/uv,target=/tmp/envlock/bin/uv"
    # BuildKit: uv is a bind mount of the RUN that needs it.
    context = render_context(plan_replay(lock, ReplayOptions(uv=uv, builder="buildkit")))
    stage = _stage_one(context.dockerfile)
    assert 'RUN ["python3", "-m", "venv", "--without-pip", "/tmp/envlock/conda-installer"]' in stage
    (rattler,) = [line for line in stage if "rattler.txt" in line and line.startswith("RUN")]
    argv = json.loads("[" + rattler.split(" [", 1)[1])
    assert argv[:6] == ["/tmp/envlock/bin/uv", "pip", "install", "--no-config", "--python", c.INSTALLER_PYTHON]
    assert "--require-hashes" in argv and "--no-deps" in argv and rattler.startswith(f"RUN {mount} ")
    assert context.executables == {"envlock/uv": "/cache/uv"}
    # The legacy builder has no mounts: uv is copied into stage 1, which is not shipped.
    legacy = render_context(plan_replay(lock, ReplayOptions(uv=uv, builder="sdk"))).dockerfile
    stage = _stage_one(legacy)
    assert "COPY envlock/uv /tmp/envlock/bin/uv" in stage and not any("--mount" in line for line in stage)
    assert "envlock/uv" not in legacy.split("FROM ")[-1]
    # Without uv (no wheel for the machine): ensurepip and pip, as before.
    plain = _stage_one(render_context(plan_replay(lock, ReplayOptions(builder="buildkit"))).dockerfile)
    assert 'RUN ["python3", "-m", "venv", "/tmp/envlock/conda-installer"]' in plain
    assert not any("envlock/bin/uv" in line for line in plain)


def test_py_rattler_comes_from_the_index_the_user_named(tmp_path):
    lock = _imported(tmp_path, CLAY)
    mirror = "https://pypi.mirror.example.org/simple"
    for options, index in (
        (ReplayOptions(), "https://pypi.org/simple"),
        (ReplayOptions(installer_index_url=mirror), mirror),
    ):
        context = render_context(plan_replay(lock, options))
        (rattler,) = [
            line for line in _stage_one(context.dockerfile) if "rattler.txt" in line and line.startswith("RUN")
        ]
        argv = json.loads("[" + rattler.split(" [", 1)[1])
        assert argv[argv.index("--index-url") + 1] == index
        assert f"from {index}" in context.files["envlock/conda/rattler.txt"].decode()
