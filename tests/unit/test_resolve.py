"""The hash-pin resolver: index pages, target tags, portability rules, and the real PyPI.

Offline tests use recorded index answers (tests/data/resolve/SOURCE.md), real
wheel files built in the test, and file:// or loopback indexes; tests marked
``network`` ask the real https://pypi.org/simple and compare with the hashes
PyPI publishes (written out as literals).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from envlock import resolve
from envlock.lockfile import model as m
from tests.conftest import DATA
from tests.served_directory import ServedDirectory

RESOLVE_DATA = DATA / "resolve"
SIX_1_16_WHEEL_SHA = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
LINUX_311 = m.Lock(
    python=m.PythonSection(
        implementation="cpython", version="3.11.7", abi_tag="cp311", platform_tag="manylinux_2_36_x86_64"
    ),
    os=m.OsSection(glibc="2.36"),
)


def make_wheel(directory: Path, name: str, version: str, tag: str = "py3-none-any") -> Path:
    """A real (installable) wheel file: METADATA, WHEEL and RECORD in a zip."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(
            f"{dist}.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        )
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target() -> resolve.Target:
    return resolve.target_from_lock(LINUX_311)


# --- pure parts ---------------------------------------------------------------------


def test_parse_recorded_pypi_json_page():
    files = resolve.parse_simple_json(
        (RESOLVE_DATA / "pypi-simple-six.json").read_text(), "https://pypi.org/simple/six/"
    )
    wheel = next(f for f in files if f.filename == "six-1.16.0-py2.py3-none-any.whl")
    assert wheel.sha256 == SIX_1_16_WHEEL_SHA
    assert wheel.url.startswith("https://files.pythonhosted.org/packages/")
    assert wheel.size == 11053
    assert wheel.requires_python == ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"
    assert not wheel.yanked


def test_parse_pep503_html_page():
    files = resolve.parse_simple_html(
        (RESOLVE_DATA / "pytorch-cu121-torch.html").read_text(), "https://download.pytorch.org/whl/cu121/torch/"
    )
    first = files[1]
    assert first.filename == "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl"
    assert first.url == "https://download.pytorch.org/whl/cu121/torch-2.3.0%2Bcu121-cp311-cp311-linux_x86_64.whl"
    assert first.sha256 == "2" * 64
    assert first.requires_python == ">=3.8.0"
    yanked = files[3]
    assert (yanked.yanked, yanked.yanked_reason) == (True, "broken build")
    assert files[4].sha256 is None


def test_target_from_a_linux_lock_accepts_older_manylinux_and_prefers_the_newest():
    tg = target()
    assert tg.interpreter == "cp311" and tg.abis == ("cp311",)
    assert tg.platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux2014_x86_64" in tg.platforms and "manylinux1_x86_64" in tg.platforms
    assert tg.platforms[-1] == "linux_x86_64"
    # A lock that records the interpreter's SOABI instead of a tag.
    soabi = m.Lock(
        python=m.PythonSection(version="3.12.1", abi_tag="cpython-312-x86_64-linux-gnu", platform_tag="linux-x86_64")
    )
    assert resolve.target_from_lock(soabi).abis == ("cp312",)


def test_choose_file_picks_the_target_wheel_and_skips_other_platforms():
    files = resolve.parse_simple_html(
        (RESOLVE_DATA / "pytorch-cu121-torch.html").read_text(), "https://download.pytorch.org/whl/cu121/torch/"
    )
    tg = target()
    chosen, why = resolve.choose_file(files, "torch", "2.3.0+cu121", tg, resolve.target_tags(tg))
    assert chosen.filename == "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl", why
    windows = resolve.Target((3, 11), "cp311", ("cp311",), ("win_amd64",))
    chosen, _ = resolve.choose_file(files, "torch", "2.3.0+cu121", windows, resolve.target_tags(windows))
    assert chosen.filename.endswith("win_amd64.whl")
    py39 = resolve.Target((3, 9), "cp39", ("cp39",), ("linux_x86_64",))
    chosen, why = resolve.choose_file(files, "torch", "2.3.0+cu121", py39, resolve.target_tags(py39))
    assert chosen is None
    assert "no file for cp39" in why and "torch-2.3.0+cu121-cp310-cp310-linux_x86_64.whl" in why


def test_choose_file_honours_requires_python_and_falls_back_to_the_sdist():
    files = resolve.parse_simple_json(
        (RESOLVE_DATA / "pypi-simple-six.json").read_text(), "https://pypi.org/simple/six/"
    )
    tg = target()
    chosen, _ = resolve.choose_file(files, "six", "1.16.0", tg, resolve.target_tags(tg))
    assert chosen.filename == "six-1.16.0-py2.py3-none-any.whl"
    # six 1.4.1 ships only an sdist.
    chosen, _ = resolve.choose_file(files, "six", "1.4.1", tg, resolve.target_tags(tg))
    assert chosen.filename == "six-1.4.1.tar.gz"
    assert resolve.choose_file(files, "six", "99.0", tg, resolve.target_tags(tg)) == (None, "no such version")


@pytest.mark.parametrize(
    "version, index",
    [
        ("2.3.0+cu121", "https://download.pytorch.org/whl/cu121"),
        ("2.13.0+cpu", "https://download.pytorch.org/whl/cpu"),
        ("2.4.1+rocm6.1", "https://download.pytorch.org/whl/rocm6.1"),
        ("2.3.0", None),
        ("1.0+computecanada", None),
    ],
)
def test_pytorch_index_inferred_from_local_labels(version, index):
    assert resolve.inferred_index(version) == index


@pytest.mark.parametrize(
    "url, local",
    [
        ("file:///opt/pypi/simple/six/six.whl", True),
        ("http://127.0.0.1:8080/simple/", True),
        ("http://localhost/simple/", True),
        ("http://[::1]/simple/", True),
        ("http://169.254.1.1/x.whl", True),
        ("http://devpi/simple/", True),
        ("https://files.pythonhosted.org/packages/x.whl", False),
        ("https://download.pytorch.org/whl/cu121/torch.whl", False),
    ],
)
def test_machine_local_urls(url, local):
    assert resolve.is_machine_local(url) is local


# --- sources other than an index -----------------------------------------------------


def test_non_index_sources(tmp_path):
    packages = [
        m.PythonPackage(name="mine", version="0.1", source="editable", url="file:///home/me/mine"),
        m.PythonPackage(name="tool", version="0.2", source="directory", url="file:///src/tool"),
        m.PythonPackage(
            name="lib", version="1.0", source="vcs", vcs="git", url="https://github.com/o/lib", commit="a" * 40
        ),
        m.PythonPackage(
            name="short", version="1.0", source="vcs", vcs="git", url="https://github.com/o/short", commit="abc1234"
        ),
        m.PythonPackage(
            name="direct",
            version="2.0",
            source="url",
            url="https://example.org/direct-2.0-py3-none-any.whl",
            archive_hash="sha256:" + "c" * 64,
        ),
        m.PythonPackage(
            name="nohash", version="2.0", source="url", url="https://example.org/nohash-2.0-py3-none-any.whl"
        ),
    ]
    pins = resolve.resolve_packages(packages, target())
    assert [(p.name, p.url, p.sha256) for p in pins.pins] == [
        ("direct", "https://example.org/direct-2.0-py3-none-any.whl", "c" * 64)
    ]
    assert [(v.name, v.commit) for v in pins.vcs] == [("lib", "a" * 40)]
    problems = {p.name: p.reason for p in pins.problems}
    assert set(problems) == {"mine", "tool", "short", "nohash"}
    assert "editable" in problems["mine"]
    assert "full commit" in problems["short"]
    assert "no archive hash" in problems["nohash"]
    assert not pins.complete


def test_wheelhouse_pin_points_at_the_file_and_its_real_hash(tmp_path):
    wheel = make_wheel(tmp_path / "house", "localpkg", "1.2.3")
    pkg = m.PythonPackage(name="localpkg", version="1.2.3")
    pins = resolve.resolve_packages(
        [pkg], target(), index_url="file://" + str(tmp_path / "empty-index"), find_links=[str(tmp_path / "house")]
    )
    (pin,) = pins.pins
    assert pin.url is None and pin.wheelhouse_file == str(wheel)
    assert pin.sha256 == sha256_of(wheel)
    copied = resolve.copy_wheelhouse_files(pins, tmp_path / "ctx" / "wheels")
    assert copied == {wheel.name: wheel.name}
    assert sha256_of(tmp_path / "ctx" / "wheels" / wheel.name) == pin.sha256


def test_a_machine_local_url_install_is_reproducible_only_from_a_named_wheelhouse(tmp_path):
    wheel = make_wheel(tmp_path / "house", "built", "0.9")
    pkg = m.PythonPackage(
        name="built", version="0.9", source="url", url=wheel.as_uri(), archive_hash="sha256:" + sha256_of(wheel)
    )
    alone = resolve.resolve_packages([pkg], target())
    assert alone.pins == () and "machine-local URL" in alone.problems[0].reason
    with_house = resolve.resolve_packages([pkg], target(), find_links=[str(tmp_path / "house")])
    assert with_house.pins[0].wheelhouse_file == str(wheel)


def test_a_file_index_the_user_names_is_used_as_given_and_fetched_on_this_host(tmp_path):
    # The shape of this machine's /opt/pypi/simple (PEP 503 directories with index.html).
    wheel = make_wheel(tmp_path / "files", "onlyhere", "1.0")
    project = tmp_path / "simple" / "onlyhere"
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="{wheel.as_uri()}#sha256={sha256_of(wheel)}">{wheel.name}</a>')
    pins = resolve.resolve_packages(
        [m.PythonPackage(name="onlyhere", version="1.0")], target(), index_url=(tmp_path / "simple").as_uri()
    )
    assert pins.problems == ()
    assert pins.pins[0].url == wheel.as_uri()
    assert any("machine-local" in note and "this host" in note for note in pins.notes)
    fetched = resolve.fetch_machine_local(pins, tmp_path / "cache")
    copy = tmp_path / "cache" / sha256_of(wheel) / wheel.name
    assert fetched.pins[0].wheelhouse_file == str(copy)
    assert copy.read_bytes() == wheel.read_bytes()
    # The file changes on the index after it was pinned: not taken, named.
    copy.unlink()
    wheel.write_bytes(wheel.read_bytes() + b"x")
    changed = resolve.fetch_machine_local(pins, tmp_path / "cache")
    assert changed.pins == ()
    assert changed.problems[0].kind == "gone" and "other bytes" in changed.problems[0].reason
    assert not copy.exists()


def test_a_loopback_http_index_the_user_names_is_pinned_with_its_urls(tmp_path):
    wheel = make_wheel(tmp_path / "root" / "files", "loopy", "1.0")
    project = tmp_path / "root" / "simple" / "loopy"
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        f'<a href="../../files/{wheel.name}#sha256={sha256_of(wheel)}">{wheel.name}</a>'
    )
    served = ServedDirectory(tmp_path / "root")
    try:
        index = f"{served.url}/simple"
        pins = resolve.resolve_packages([m.PythonPackage(name="loopy", version="1.0")], target(), index_url=index)
        fetched = resolve.fetch_machine_local(pins, tmp_path / "cache")
    finally:
        served.close()
    assert pins.pins[0].url == f"{index.rsplit('/', 1)[0]}/files/{wheel.name}"
    assert pins.pins[0].sha256 == sha256_of(wheel)
    assert Path(fetched.pins[0].wheelhouse_file or "").read_bytes() == wheel.read_bytes()


def test_index_urls_with_credentials_or_odd_schemes_are_refused():
    from envlock.errors import UsageError

    with pytest.raises(UsageError, match="credentials"):
        resolve.resolve_packages([], target(), index_url="https://user:secret@pypi.example.org/simple")
    with pytest.raises(UsageError, match="not an http"):
        resolve.resolve_packages([], target(), extra_index_urls=["--trusted-host evil"])


# --- the real index ---------------------------------------------------------------------


@pytest.mark.network
def test_pins_from_pypi_match_the_published_hashes():
    lock = m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version="3.11.7",
            abi_tag="cp311",
            platform_tag="manylinux_2_36_x86_64",
            packages=(m.PythonPackage(name="six", version="1.16.0"), m.PythonPackage(name="PyYAML", version="6.0.1")),
        ),
        os=m.OsSection(glibc="2.36"),
    )
    pins = resolve.resolve_lock(lock)
    assert pins.complete
    by_name = {p.name: p for p in pins.pins}
    assert by_name["six"].sha256 == SIX_1_16_WHEEL_SHA
    assert by_name["six"].index == "https://pypi.org/simple"
    assert by_name["PyYAML"].filename == "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert by_name["PyYAML"].sha256 == "d2b04aac4d386b172d5b9692e2d2da8de7bfb6c387fa4f801fbf6fb2e6ba4673"


@pytest.mark.network
def test_another_target_gets_its_own_wheel():
    mac = m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version="3.12.2",
            abi_tag="cp312",
            platform_tag="macosx_11_0_arm64",
            packages=(m.PythonPackage(name="PyYAML", version="6.0.1"),),
        )
    )
    (pin,) = resolve.resolve_lock(mac).pins
    assert pin.filename == "PyYAML-6.0.1-cp312-cp312-macosx_11_0_arm64.whl"


@pytest.mark.network
def test_yanked_release_is_pinned_and_flagged():
    lock = dataclass_lock(m.PythonPackage(name="requests", version="2.32.0"))
    pins = resolve.resolve_lock(lock)
    (pin,) = pins.pins
    assert pin.yanked and "CVE-2024-35195" in pin.yanked_reason
    (finding,) = pins.to_findings()
    assert "yanked" in finding.message


@pytest.mark.network
def test_cuda_local_version_is_not_reproducible_here_unless_a_wheelhouse_has_it(tmp_path):
    lock = dataclass_lock(m.PythonPackage(name="torch", version="2.3.0+cu121"))
    pins = resolve.resolve_lock(lock)
    (problem,) = pins.problems
    assert "https://download.pytorch.org/whl/cu121" in problem.reason
    assert "--find-links" in problem.fix
    wheel = make_wheel(tmp_path / "house", "torch", "2.3.0+cu121", "cp311-cp311-linux_x86_64")
    (pin,) = resolve.resolve_lock(lock, find_links=[str(tmp_path / "house")]).pins
    assert pin.wheelhouse_file == str(wheel) and pin.sha256 == sha256_of(wheel)


@pytest.mark.network
def test_unknown_project_and_version_are_named():
    lock = dataclass_lock(
        m.PythonPackage(name="six", version="0.0.0"), m.PythonPackage(name="envlock-no-such-project-zz", version="1.0")
    )
    problems = {p.name: p.reason for p in resolve.resolve_lock(lock).problems}
    assert problems == {
        "six": "0.0.0 not on https://pypi.org/simple",
        "envlock-no-such-project-zz": "not on https://pypi.org/simple",
    }


def dataclass_lock(*packages: m.PythonPackage) -> m.Lock:
    return m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version="3.11.7",
            abi_tag="cp311",
            platform_tag="manylinux_2_36_x86_64",
            packages=packages,
        ),
        os=m.OsSection(glibc="2.36"),
    )
