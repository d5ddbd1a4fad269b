"""The new importers' less common paths, on small inputs in each tool's documented shape.

Real files of each format are in tests/data/corpus (EXPECTED.toml); these cases cover what those
files do not show: VCS and local sources, pip inspect's PEP 610 data, a platform choice, CSV
without a header, and rocm-smi's concise table.
"""

from __future__ import annotations

import pytest

from envlock.errors import FormatError
from envlock.formats.importers import import_bytes
from envlock.lockfile import dumps_lock

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "a" * 64


def text_import(fmt: str, text: str, **options):
    return import_bytes(fmt, text.encode("utf-8"), "input", **options)


def by_name(lock):
    return {p.name: p for p in lock.python.packages}


def test_uv_lock_sources():
    lock = text_import(
        "uv-lock",
        f"""version = 1
revision = 2

[[package]]
name = "foo"
version = "0.3.0"
source = {{ git = "https://github.com/o/foo?rev=main#{COMMIT}" }}

[[package]]
name = "Local_Pkg"
version = "1.0"
source = {{ directory = "/home/ann-canary/src/local" }}

[[package]]
name = "one"
version = "2.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{{ url = "https://files.example/one-2.0-py3-none-any.whl", hash = "sha256:{SHA}" }}]

[[package]]
name = "root"
source = {{ virtual = "." }}
""",
    )
    got = by_name(lock)
    assert (got["foo"].source, got["foo"].url, got["foo"].commit) == ("vcs", "https://github.com/o/foo", COMMIT)
    assert (got["local-pkg"].source, got["local-pkg"].url) == ("directory", "file://~/src/local")
    assert got["one"].archive_hash == f"sha256:{SHA}"
    assert "root" not in got and any("virtual" in w for w in lock.capture_warnings)
    assert "ann-canary" not in dumps_lock(lock)


def test_poetry_lock_git_and_develop_sources():
    lock = text_import(
        "poetry-lock",
        f"""[[package]]
name = "gitpkg"
version = "0.1.0"
description = ""
optional = false
python-versions = "*"
files = []

[package.source]
type = "git"
url = "https://github.com/o/gitpkg.git"
reference = "main"
resolved_reference = "{COMMIT}"

[[package]]
name = "mine"
version = "0.2.0"
description = ""
optional = false
python-versions = "*"
develop = true
files = []

[package.source]
type = "directory"
url = "/Users/ann-canary/mine"

[metadata]
lock-version = "2.0"
python-versions = "^3.10"
content-hash = "{SHA}"
""",
    )
    got = by_name(lock)
    assert (got["gitpkg"].source, got["gitpkg"].commit) == ("vcs", COMMIT)
    assert (got["mine"].source, got["mine"].url) == ("editable", "file://~/mine")


def test_pipfile_lock_git_and_single_hash():
    lock = text_import(
        "pipfile-lock",
        '{"_meta": {"requires": {"python_full_version": "3.11.4"}},'
        f' "default": {{"six": {{"version": "==1.16.0", "hashes": ["sha256:{SHA}"]}},'
        f' "vcspkg": {{"git": "https://github.com/o/vcspkg.git", "ref": "{COMMIT}"}}}},'
        ' "develop": {"pytest": {"version": "==8.0.0"}}}',
    )
    got = by_name(lock)
    assert (got["six"].version, got["six"].archive_hash) == ("1.16.0", f"sha256:{SHA}")
    assert (got["vcspkg"].version, got["vcspkg"].source, got["vcspkg"].commit) == ("unknown", "vcs", COMMIT)
    assert lock.python.version == "3.11.4"
    assert "pytest" not in got and any("1 develop packages" in w for w in lock.capture_warnings)


def test_pip_inspect_keeps_pep610_data_and_the_interpreter():
    lock = text_import(
        "pip-inspect",
        f"""{{"version": "1", "pip_version": "24.0",
 "installed": [
  {{"metadata": {{"name": "numpy", "version": "1.26.4"}}, "installer": "pip", "requested": true}},
  {{"metadata": {{"name": "tool", "version": "0.1"}}, "installer": "pip", "requested": true,
   "direct_url": {{"url": "https://github.com/o/tool", "vcs_info": {{"vcs": "git", "commit_id": "{COMMIT}"}}}}}},
  {{"metadata": {{"name": "mine", "version": "0.2"}},
   "direct_url": {{"url": "file:///home/ann-canary/mine", "dir_info": {{"editable": true}}}}}},
  {{"metadata": {{"name": "wheel1", "version": "1.0"}},
   "direct_url": {{"url": "https://x.example/wheel1-1.0-py3-none-any.whl", "archive_info": {{"hashes": {{"sha256": "{SHA}"}}}}}}}}
 ],
 "environment": {{"implementation_name": "cpython", "python_full_version": "3.11.7"}}}}""",
    )
    got = by_name(lock)
    assert (lock.python.version, lock.python.implementation) == ("3.11.7", "cpython")
    assert (got["numpy"].source, got["numpy"].installer, got["numpy"].requested) == ("index", "pip", True)
    assert (got["tool"].source, got["tool"].vcs, got["tool"].commit) == ("vcs", "git", COMMIT)
    assert (got["mine"].source, got["mine"].url) == ("editable", "file://~/mine")
    assert (got["wheel1"].source, got["wheel1"].archive_hash) == ("url", f"sha256:{SHA}")
    assert "ann-canary" not in dumps_lock(lock)


def test_pip_list_json_editable_location_is_private():
    lock = text_import(
        "pip-list-json",
        '[{"name": "pip", "version": "24.0"}, {"name": "mine", "version": "0.2",'
        ' "editable_project_location": "C:\\\\Users\\\\ann-canary\\\\mine"}]',
    )
    got = by_name(lock)
    assert (got["mine"].source, got["mine"].url) == ("editable", "file://~/mine")
    assert got["pip"].version == "24.0"


PIXI = f"""version: 6
environments:
  default:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    packages:
      linux-64:
      - conda: https://conda.anaconda.org/conda-forge/linux-64/python-3.12.1-hab00c5b_1_cpython.conda
      osx-arm64:
      - conda: https://conda.anaconda.org/conda-forge/osx-arm64/python-3.12.2-hdf0ec26_0_cpython.conda
packages:
- conda: https://conda.anaconda.org/conda-forge/linux-64/python-3.12.1-hab00c5b_1_cpython.conda
  sha256: {SHA}
- conda: https://conda.anaconda.org/conda-forge/osx-arm64/python-3.12.2-hdf0ec26_0_cpython.conda
  md5: 0123456789abcdef0123456789abcdef
"""


def test_pixi_lock_takes_one_platform_and_names_the_others():
    lock = text_import("pixi-lock", PIXI)
    (python,) = lock.conda.packages
    assert (python.version, python.build, python.subdir, python.sha256) == (
        "3.12.1",
        "hab00c5b_1_cpython",
        "linux-64",
        f"sha256:{SHA}",
    )
    assert any("osx-arm64" in w and "--platform" in w for w in lock.capture_warnings)
    mac = text_import("pixi-lock", PIXI, platform="osx-arm64")
    assert lock.python.version == "3.12.1" and mac.python.version == "3.12.2"
    with pytest.raises(FormatError, match="win-64"):
        text_import("pixi-lock", PIXI, platform="win-64")


def test_nvidia_smi_csv_without_a_header_is_refused_with_its_line():
    with pytest.raises(FormatError) as err:
        text_import("nvidia-smi-csv", "200.00, 440.64, GeForce RTX 2080, 7979\n")
    assert "line 1" in err.value.message and "header" in err.value.message


def test_rocm_smi_concise_table_records_the_device_id_and_says_so():
    lock = text_import(
        "rocm-smi",
        "============================ ROCm System Management Interface ============================\n"
        "====================================== Concise Info ======================================\n"
        "Device  Node  IDs              Temp    Power  Partitions          SCLK    MCLK     Fan  Perf\n"
        "              (DID,     GUID)  (Edge)  (Avg)  (Mem, Compute, ID)\n"
        "==========================================================================================\n"
        "0       1     0x740f,   12345  35.0C   40.0W  N/A, N/A, 0         800Mhz  1600Mhz  0%   auto\n",
    )
    (device,) = lock.accelerators.devices
    assert (device.vendor, device.name) == ("amd", "AMD GPU device 0x740f")
    assert any("only its device id" in w for w in lock.capture_warnings)
    assert lock.nvidia is None


def test_conda_list_names_a_develop_row_and_sets_python():
    lock = text_import(
        "conda-list",
        "# Name  Version  Build  Channel\npython  3.11.5  h955ad1f_0\nmine  0.1  dev_0  <develop>\n",
    )
    assert lock.python.version == "3.11.5"
    assert [p.name for p in lock.conda.packages] == ["python"]
    assert any("'mine'" in w and "develop" in w for w in lock.capture_warnings)


@pytest.mark.parametrize(
    "text",
    ["just some prose\nwith nothing in it\n", "{}\n", "key = 1\n"],
)
def test_auto_refuses_what_it_cannot_tell(text):
    with pytest.raises(FormatError) as err:
        text_import("auto", text)
    assert "cannot tell which format" in err.value.message


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("pip-inspect", '{"installed": [5]}'),
        ("pip-inspect", '{"version": 5, "installed": [{"metadata": {"name": "x", "version": "1"}}]}'),
        ("uv-lock", 'version = 1\n[[package]]\nname = "x"\nsource = { git = "ssh://-oProxyCommand=x/y#abc" }\n'),
        ("pipfile-lock", '{"_meta": {"requires": 5}, "default": {"x": {"version": 5, "hashes": 5, "git": 7}}}'),
        ("rocm-smi", '{"card99999999999999999999": {"Card Series": "x"}}'),
    ],
)
def test_wrong_types_in_structured_input_never_crash(fmt, text):
    # Found by mutating the corpus: values of the wrong JSON/TOML type must cost an item, not a traceback.
    try:
        lock = text_import(fmt, text)
    except FormatError as exc:
        assert exc.message.startswith("input")
        return
    assert "ProxyCommand" not in dumps_lock(lock)


def test_structural_errors_in_pip_json_name_their_line():
    with pytest.raises(FormatError) as err:
        text_import("pip-list-json", '[\n {"name": "a", "version": "1"},\n "not an object"\n]\n')
    assert "line 3" in err.value.message and "item 1" in err.value.message
    with pytest.raises(FormatError) as err:
        text_import(
            "pip-inspect",
            '{"version": "1",\n "installed": [\n  {"metadata": {"name": "a", "version": "1"}},\n'
            '  {"metadata": "x, [y] {z}"},\n  5\n ]}\n',
        )
    assert "line 4" in err.value.message and "installed[1]" in err.value.message
    lock = text_import("pip-list-json", '[{"name": "a", "version": "1"},\n{"name": "b"}]')
    assert any(w.startswith("line 2: item 1 'b' names no version") for w in lock.capture_warnings)
