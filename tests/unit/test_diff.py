"""The pure diff of two locks: ranking, unknowns, content changes, symmetry (THREATS.md F2, H1-H3).

Locks here are built from the model directly; tests/unit/test_diff_capture.py
diffs locks captured from real environments.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envlock import records
from envlock.diff import diff, differs, section_digest
from envlock.findings import UNKNOWN
from envlock.lockfile import model as m
from envlock.lockfile.write import write_lock
from tests.conftest import run_envlock

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "b" * 64


def base_lock(**changes) -> m.Lock:
    lock = m.Lock(
        python=m.PythonSection(
            implementation="cpython",
            version="3.11.7",
            abi_tag="cp311",
            platform_tag="manylinux_2_36_x86_64",
            packages=(
                m.PythonPackage(name="numpy", version="1.26.4"),
                m.PythonPackage(name="six", version="1.16.0"),
                m.PythonPackage(name="torch", version="2.3.0+cu121"),
            ),
        ),
        cuda=m.CudaSection(components=(m.CudaComponent(name="cudnn", version="8.9.2", source="pip"),)),
        nvidia=m.NvidiaSection(
            driver_present=True,
            driver_version="550.54.15",
            gpus=(m.Gpu(index=0, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0", memory_total_mib=81920),),
        ),
        cpu=m.CpuSection(
            architecture="x86_64", vendor="GenuineIntel", microarchitecture="icelake", flags=("avx2", "avx512f", "fma")
        ),
        runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": "8"}),
        os=m.OsSection(
            id="debian", version_id="12", glibc="2.36", packages=(m.OsPackage(name="libc6", version="2.36-9"),)
        ),
    )
    return records.replace(lock, **changes)


def paths(findings) -> list[str]:
    return [f.path for f in findings]


def test_identical_locks_have_no_findings():
    assert diff(base_lock(), base_lock()) == []


def test_differences_come_in_the_documented_ranking():
    a = base_lock()
    b = base_lock(
        python=records.replace(
            a.python,
            packages=(
                m.PythonPackage(name="numpy", version="1.26.4"),
                m.PythonPackage(name="six", version="1.17.0"),
                m.PythonPackage(name="torch", version="2.4.0+cu121"),
            ),
        ),
        cuda=m.CudaSection(components=(m.CudaComponent(name="cudnn", version="9.1.0", source="pip"),)),
        nvidia=records.replace(
            a.nvidia,
            driver_version="560.28.03",
            gpus=(m.Gpu(index=0, name="NVIDIA H100 80GB HBM3", compute_capability="9.0", memory_total_mib=81920),),
        ),
        cpu=records.replace(a.cpu, flags=("avx2", "fma")),
        runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": "1"}),
        os=records.replace(a.os, glibc="2.39", packages=(m.OsPackage(name="libc6", version="2.39-0"),)),
    )
    found = diff(a, b)
    assert paths(found) == [
        "nvidia.gpus.compute-capability",
        "nvidia.gpus.name",
        "cuda.components[cudnn]",
        "nvidia.driver-version",
        "cpu.flags",
        "runtime.env.OMP_NUM_THREADS",
        "python.packages[torch]",
        "python.packages[six]",
        "os.packages[libc6]",
        "os.glibc",
    ]
    assert [f.layer for f in found] == [
        "gpu",
        "gpu",
        "cuda",
        "driver",
        "cpu",
        "runtime",
        "framework",
        "python",
        "os",
        "os",
    ]
    assert all(f.why and f.why.endswith(tuple("abcdefghijklmnopqrstuvwxyz")) for f in found)
    severities = {f.path: f.severity for f in found}
    assert severities["nvidia.gpus.compute-capability"] == "numeric"
    assert severities["python.packages[six]"] == "differs"
    torch = found[paths(found).index("python.packages[torch]")]
    assert (torch.locked, torch.actual) == ("2.3.0+cu121", "2.4.0+cu121")
    flags = found[paths(found).index("cpu.flags")]
    assert "avx512f" in flags.message


def test_same_version_different_hash_is_a_content_change():
    # THREATS.md F2: a rebuilt or tampered file under the same version number.
    def lock(hash_value):
        return m.Lock(
            python=m.PythonSection(
                packages=(
                    m.PythonPackage(
                        name="mylib",
                        version="1.0",
                        source="url",
                        url="https://example.org/mylib-1.0-py3-none-any.whl",
                        archive_hash=hash_value,
                    ),
                )
            )
        )

    (finding,) = diff(lock(SHA_A), lock(SHA_B))
    assert finding.path == "python.packages[mylib]"
    assert "same version, different content" in finding.message
    assert finding.why.startswith("the same version with a different file hash")
    assert (finding.locked, finding.actual) == ("sha256:aaaaaaaaaaaa", "sha256:bbbbbbbbbbbb")


def _digest_lock(digest, name="mylib"):
    # Two index installs of one release; only the digest over their installed files can tell them apart.
    return m.Lock(
        python=m.PythonSection(
            packages=(
                m.PythonPackage(name=name, version="1.0", content_digest=digest),
                m.PythonPackage(name="six", version="1.16.0", content_digest=SHA_A),
            )
        )
    )


def test_same_version_with_another_content_digest_is_different_bytes():
    (finding,) = diff(_digest_lock(SHA_A), _digest_lock(SHA_B))
    assert finding.path == "python.packages[mylib]"
    assert "mylib 1.0: same version, different bytes" in finding.message
    assert (finding.locked, finding.actual) == ("sha256:aaaaaaaaaaaa", "sha256:bbbbbbbbbbbb")
    assert finding.rank == 80  # an ordinary package ranks as one
    (framework,) = diff(_digest_lock(SHA_A, "torch"), _digest_lock(SHA_B, "torch"))
    assert framework.rank == 70 and framework.severity == "numeric"


def test_a_content_digest_known_on_one_side_only_is_not_a_difference():
    assert diff(_digest_lock(SHA_A), _digest_lock(None)) == []
    assert diff(_digest_lock(None), _digest_lock(SHA_B)) == []


def test_cli_names_the_package_whose_bytes_differ(tmp_path):
    a = write(tmp_path, "a.lock", _digest_lock(SHA_A))
    b = write(tmp_path, "b.lock", _digest_lock(SHA_B))
    unknown = write(tmp_path, "unknown.lock", _digest_lock(None))
    changed = run_envlock("diff", a, b, "--json")
    assert changed.returncode == 1, changed.stderr
    (finding,) = json.loads(changed.stdout)["findings"]
    assert finding["path"] == "python.packages[mylib]"
    assert "same version, different bytes" in finding["message"]
    same = run_envlock("diff", a, unknown)
    assert same.returncode == 0, same.stdout + same.stderr


def test_conda_same_version_and_build_with_another_md5_is_a_content_change():
    def lock(md5):
        return m.Lock(
            conda=m.CondaSection(packages=(m.CondaPackage(name="zlib", version="1.2.13", build="h5eee18b_0", md5=md5),))
        )

    (finding,) = diff(lock("1" * 32), lock("2" * 32))
    assert finding.path == "conda.packages[zlib]"
    assert "different content" in finding.message


def test_a_hash_known_on_one_side_only_is_not_a_difference():
    a = m.Lock(
        python=m.PythonSection(
            packages=(
                m.PythonPackage(
                    name="mylib", version="1.0", source="url", url="https://e.org/mylib-1.0.tar.gz", archive_hash=SHA_A
                ),
            )
        )
    )
    b = m.Lock(
        python=m.PythonSection(
            packages=(m.PythonPackage(name="mylib", version="1.0", source="url", url="https://e.org/mylib-1.0.tar.gz"),)
        )
    )
    assert diff(a, b) == []


def test_a_missing_layer_is_one_unknown_finding_not_a_flood():
    full = base_lock()
    partial = records.replace(full, nvidia=None, cpu=None, os=None, cuda=None, runtime=None)
    found = diff(full, partial)
    assert sorted(f.path for f in found) == ["cpu", "cuda", "nvidia", "os", "runtime"]
    assert {f.status for f in found} == {UNKNOWN}
    assert {f.severity for f in found} == {"info"}
    assert not differs(found)
    nvidia = next(f for f in found if f.path == "nvidia")
    assert (nvidia.locked, nvidia.actual) == ("recorded", "unknown")


def test_fields_known_on_one_side_are_listed_once_per_layer():
    a = m.Lock(cpu=m.CpuSection(architecture="x86_64", microarchitecture="zen3", logical_cores=32))
    b = m.Lock(cpu=m.CpuSection(architecture="x86_64"))
    (finding,) = diff(a, b)
    assert finding.status == UNKNOWN
    assert finding.locked == "cpu.logical-cores, cpu.microarchitecture"
    assert finding.actual is None


def test_python_names_are_compared_after_pep503_normalisation():
    a = m.Lock(
        python=m.PythonSection(
            packages=(
                m.PythonPackage(name="PyYAML", version="6.0.1"),
                m.PythonPackage(name="typing_extensions", version="4.12.2"),
            )
        )
    )
    b = m.Lock(
        python=m.PythonSection(
            packages=(
                m.PythonPackage(name="pyyaml", version="6.0.1"),
                m.PythonPackage(name="Typing.Extensions", version="4.12.2"),
            )
        )
    )
    assert diff(a, b) == []


def test_equal_pep440_versions_are_not_a_difference():
    a = m.Lock(python=m.PythonSection(packages=(m.PythonPackage(name="x", version="1.0"),)))
    b = m.Lock(python=m.PythonSection(packages=(m.PythonPackage(name="x", version="1.0.0"),)))
    assert diff(a, b) == []


def test_cuda_library_wheels_rank_with_their_library():
    a = m.Lock(python=m.PythonSection(packages=(m.PythonPackage(name="requests", version="2.31.0"),)))
    b = m.Lock(
        python=m.PythonSection(
            packages=(
                m.PythonPackage(name="requests", version="2.32.0"),
                m.PythonPackage(name="nvidia-cudnn-cu12", version="9.10.2.21"),
            )
        )
    )
    found = diff(a, b)
    assert paths(found) == ["python.packages[nvidia-cudnn-cu12]", "python.packages[requests]"]
    assert found[0].layer == "cuda"
    assert found[0].message == "nvidia-cudnn-cu12 9.10.2.21 only in B"


def test_vcs_commits_differ_even_with_the_same_version():
    def lock(commit):
        return m.Lock(
            python=m.PythonSection(
                packages=(
                    m.PythonPackage(
                        name="lib",
                        version="0.1",
                        source="vcs",
                        vcs="git",
                        url="https://github.com/o/lib",
                        commit=commit,
                    ),
                )
            )
        )

    (finding,) = diff(lock("1" * 40), lock("2" * 40))
    assert finding.path == "python.packages[lib]"


# --- properties (THREATS.md H2) -------------------------------------------------------

NAMES = ["numpy", "scipy", "torch", "six", "idna", "Foo_Bar", "nvidia-cudnn-cu12", "requests", "typing.extensions"]
VERSIONS = ["1.0", "1.1", "2.0.3", "2.3.0+cu121", "9.10.2.21"]

packages = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(VERSIONS), st.sampled_from([None, SHA_A, SHA_B]), st.sampled_from([None, SHA_A, SHA_B])),
    max_size=6,
)
envs = st.dictionaries(
    st.sampled_from(["OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG"]),
    st.sampled_from(["1", "4", ":4096:8"]),
    max_size=3,
)
gpus = st.lists(
    st.tuples(
        st.sampled_from(["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "Tesla T4"]),
        st.sampled_from(["8.0", "9.0", "7.5"]),
    ),
    max_size=3,
)


@st.composite
def locks(draw):
    pkgs = draw(packages)
    python = None
    if draw(st.booleans()):
        python = m.PythonSection(
            version=draw(st.sampled_from([None, "3.11.7", "3.12.1"])),
            packages=tuple(
                m.PythonPackage(
                    name=name,
                    version=v,
                    source="url" if h else "index",
                    url="https://e.org/f.whl" if h else None,
                    archive_hash=h,
                    content_digest=d,
                )
                for name, (v, h, d) in pkgs.items()
            ),
        )
    runtime = m.RuntimeSection(env=draw(envs)) if draw(st.booleans()) else None
    nvidia = None
    if draw(st.booleans()):
        nvidia = m.NvidiaSection(
            driver_present=True,
            driver_version=draw(st.sampled_from([None, "550.54.15", "580.65.06"])),
            gpus=tuple(m.Gpu(index=i, name=n, compute_capability=cc) for i, (n, cc) in enumerate(draw(gpus))),
        )
    cpu = (
        m.CpuSection(flags=tuple(draw(st.sets(st.sampled_from(["avx2", "avx512f", "amx_tile", "fma"])))))
        if draw(st.booleans())
        else None
    )
    conda = None
    if draw(st.booleans()):
        chosen = draw(
            st.dictionaries(
                st.sampled_from(["numpy", "mkl", "cudnn", "zlib"]),
                st.tuples(
                    st.sampled_from(["1.0", "2.0"]),
                    st.sampled_from(["h0", "h1"]),
                    st.sampled_from([None, "1" * 32, "2" * 32]),
                ),
                max_size=3,
            )
        )
        conda = m.CondaSection(
            packages=tuple(m.CondaPackage(name=n, version=v, build=b, md5=h) for n, (v, b, h) in chosen.items())
        )
    os_section = None
    if draw(st.booleans()):
        chosen = draw(
            st.dictionaries(
                st.sampled_from(["libc6", "libopenblas0", "libcudnn9"]), st.sampled_from(["1.0-1", "2.0-1"]), max_size=3
            )
        )
        os_section = m.OsSection(
            glibc=draw(st.sampled_from([None, "2.36", "2.39"])),
            packages=tuple(m.OsPackage(name=n, version=v) for n, v in chosen.items()),
        )
    return m.Lock(python=python, runtime=runtime, nvidia=nvidia, cpu=cpu, conda=conda, os=os_section)


def _swap_sides(path: str) -> str:
    # Host findings name their direction ("torch ... (A on B's host)"); the mirror swaps it.
    return (
        path.replace("(A on B's host)", "\0")
        .replace("(B on A's host)", "(A on B's host)")
        .replace("\0", "(B on A's host)")
    )


def mirrored(findings):
    return sorted((f.layer, _swap_sides(f.path), f.severity, f.status, f.actual, f.locked) for f in findings)


def as_tuples(findings):
    return sorted((f.layer, f.path, f.severity, f.status, f.locked, f.actual) for f in findings)


@settings(max_examples=150, deadline=None)
@given(locks())
def test_a_lock_diffed_with_itself_is_empty(lock):
    assert diff(lock, lock) == []


@settings(max_examples=150, deadline=None)
@given(locks(), locks())
def test_diff_b_a_mirrors_diff_a_b(a, b):
    assert as_tuples(diff(b, a)) == mirrored(diff(a, b))
    assert differs(diff(a, b)) == differs(diff(b, a))


@settings(max_examples=100, deadline=None)
@given(locks(), locks(), st.randoms(use_true_random=False))
def test_diff_is_stable_under_reordering_and_name_normalisation(a, b, rnd):
    def shuffle_and_respell(lock):
        if lock.python is None:
            return lock
        pkgs = list(lock.python.packages)
        rnd.shuffle(pkgs)
        pkgs = [records.replace(p, name=p.name.upper().replace("-", "_")) for p in pkgs]
        return records.replace(lock, python=records.replace(lock.python, packages=tuple(pkgs)))

    assert [f.to_dict() for f in diff(shuffle_and_respell(a), shuffle_and_respell(b))] == [
        f.to_dict() for f in diff(a, b)
    ]


@settings(max_examples=100, deadline=None)
@given(locks(), locks())
def test_equal_layer_digests_mean_no_findings_in_that_layer(a, b):
    # N-way grouping relies on this: two locks in one group never differ in that layer.
    from envlock.diff import diff_section

    for section in ("python", "runtime", "nvidia", "cpu", "conda", "os"):
        va, vb = getattr(a, section), getattr(b, section)
        if va is not None and vb is not None and section_digest(section, va) == section_digest(section, vb):
            assert diff_section(section, va, vb) == []


# --- the command ----------------------------------------------------------------------


def write(tmp_path, name, lock):
    path = tmp_path / name
    write_lock(lock, path)
    return str(path)


def test_cli_exit_codes_and_json(tmp_path):
    a = write(tmp_path, "a.lock", base_lock())
    same = write(tmp_path, "same.lock", base_lock())
    b = write(tmp_path, "b.lock", base_lock(runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": "1"})))
    ok = run_envlock("diff", a, same)
    assert ok.returncode == 0, ok.stderr
    assert "identical" in ok.stdout
    changed = run_envlock("diff", a, b, "--json")
    assert changed.returncode == 1, changed.stderr
    payload = json.loads(changed.stdout)
    assert payload["identical"] is False
    assert [f["path"] for f in payload["findings"]] == ["runtime.env.OMP_NUM_THREADS"]
    assert payload["findings"][0]["locked"] == "8"
    md = run_envlock("diff", a, b, "--markdown")
    assert md.returncode == 1
    assert "| numeric | runtime.env.OMP_NUM_THREADS | 8 | 1 |" in md.stdout


def test_cli_text_groups_by_layer_with_why(tmp_path):
    a = write(tmp_path, "a.lock", base_lock())
    b = write(tmp_path, "b.lock", base_lock(cpu=None, runtime=m.RuntimeSection(env={})))
    result = run_envlock("diff", a, b)
    assert result.returncode == 1
    out = result.stdout
    assert "[runtime]" in out
    assert "OMP_NUM_THREADS: '8' in A, unset in B" in out
    assert "why it can matter: thread counts" in out
    assert "not compared (unknown is not different):" in out
    assert out.index("[runtime]") < out.index("not compared (unknown is not different)")


def test_cli_only_unknown_differences_exit_zero(tmp_path):
    a = write(tmp_path, "a.lock", base_lock())
    b = write(tmp_path, "b.lock", base_lock(nvidia=None))
    result = run_envlock("diff", a, b)
    assert result.returncode == 0, result.stdout
    assert "1 layer not compared" in result.stdout


@pytest.mark.parametrize(
    "content, needle",
    [
        (b'lock-version = "1.0"\n[python\n', "invalid TOML"),
        (b"\xff\xfe garbage", "invalid UTF-8"),
        (b"a = " + b"[" * 1000, "nested"),
        (b'lock-version = "1.0"\n[runtime.env]\nPATH = "/evil"\n', "allow-listed"),
    ],
)
def test_bad_input_exits_2_with_the_loaders_message(tmp_path, content, needle):
    # THREATS.md H1: diff uses the same loader (and so the same errors) as show and replay.
    good = write(tmp_path, "good.lock", base_lock())
    bad = tmp_path / "bad.lock"
    bad.write_bytes(content)
    result = run_envlock("diff", good, str(bad))
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    shown = run_envlock("show", str(bad))
    assert shown.returncode == 2
    assert shown.stderr == result.stderr


def test_missing_file_and_single_argument_exit_2(tmp_path):
    a = write(tmp_path, "a.lock", base_lock())
    assert run_envlock("diff", a, str(tmp_path / "nope.lock")).returncode == 2
    single = run_envlock("diff", a)
    assert single.returncode == 2
    assert "at least two" in single.stderr


def test_values_reach_the_terminal_escaped():
    # THREATS.md H3: the loader rejects control characters; the report escapes them anyway.
    from envlock.commands.diff import two_way_text

    a = m.Lock(
        nvidia=m.NvidiaSection(
            driver_present=True, gpus=(m.Gpu(index=0, name="GPU\x1b]0;pwned\x07", compute_capability="8.0"),)
        )
    )
    b = m.Lock(
        nvidia=m.NvidiaSection(driver_present=True, gpus=(m.Gpu(index=0, name="\u202eevil", compute_capability="8.0"),))
    )
    text = two_way_text(diff(a, b), {"A": "a", "B": "b"})
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\u001b" in text and "\\u202e" in text


def test_host_rules_add_a_blocker_when_one_host_cannot_run_the_other_locks_cuda():
    # envlock.compat.rules (issue 4): B's host has no driver for A's torch +cu121.
    a = m.Lock(
        python=m.PythonSection(
            version="3.11.7",
            platform_tag="manylinux_2_36_x86_64",
            packages=(m.PythonPackage(name="torch", version="2.3.0+cu121"),),
        ),
        nvidia=m.NvidiaSection(
            driver_present=True,
            driver_version="550.54.15",
            cuda_driver_version="12.4",
            gpus=(m.Gpu(index=0, name="NVIDIA A100-SXM4-80GB", compute_capability="8.0"),),
        ),
    )
    b = records.replace(a, nvidia=m.NvidiaSection(driver_present=False))
    found = diff(a, b)
    assert found[0].severity == "blocker"
    assert found[0].path.endswith("(A on B's host)")
    assert "no NVIDIA driver" in found[0].message
    assert [f.path for f in found[1:]] == ["nvidia.gpus", "nvidia.driver-present"]
    assert found[1].message == "GPU count: 1 in A, 0 in B (NVIDIA A100-SXM4-80GB)"
    # The same software on a host with the same GPU and driver: no blocker, no finding.
    assert diff(a, records.replace(a)) == []


# --- version equality without packaging -------------------------------------------


_SMALL_NUMBERS = st.integers(0, 3)


@st.composite
def spelled_versions(draw, numbers=_SMALL_NUMBERS):
    """One PEP 440 version in one of its many spellings (and, now and then, an invalid one)."""

    def number(n: int) -> str:
        return draw(st.sampled_from(["", "0", "00"])) + str(n) if n else draw(st.sampled_from(["0", "00"]))

    text = draw(st.sampled_from(["", "v", "V"]))
    if draw(st.booleans()):
        text += number(draw(numbers)) + "!"
    release = draw(st.lists(numbers, min_size=1, max_size=3))
    text += ".".join(number(n) for n in release) + ".0" * draw(st.integers(0, 2))
    separators = st.sampled_from(["", ".", "-", "_"])
    if draw(st.booleans()):
        text += draw(separators) + draw(st.sampled_from(["a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "RC"]))
        text += draw(separators) + number(draw(numbers)) if draw(st.booleans()) else ""
    if draw(st.booleans()):
        text += draw(
            st.sampled_from(
                [
                    "-" + number(draw(numbers)),
                    draw(separators) + draw(st.sampled_from(["post", "rev", "r"])) + number(draw(numbers)),
                ]
            )
        )
    if draw(st.booleans()):
        text += draw(separators) + "dev" + number(draw(numbers))
    if draw(st.booleans()):
        text += (
            "+"
            + draw(st.sampled_from(["ubuntu", "local", "1", "01", "a1"]))
            + draw(st.sampled_from(["", ".1", "-0", "_2"]))
        )
    return text + draw(st.sampled_from(["", "", "", "x", " "]))


def _packaging_equal(va: str, vb: str) -> bool:
    from packaging.version import InvalidVersion, Version

    if va == vb:
        return True
    try:
        return Version(va) == Version(vb)
    except InvalidVersion:
        return False


@settings(max_examples=1500, deadline=None)
@given(spelled_versions(), spelled_versions())
def test_versions_compare_as_packaging_compares_them(va, vb):
    from envlock.diff import _versions_equal

    assert _versions_equal(va, vb) == _packaging_equal(va, vb)


@pytest.mark.parametrize(
    "va,vb,equal",
    [
        ("1.0", "1.0.0", True),
        ("1.0-1", "1.0.post1", True),
        ("v1.0a", "1.0ALPHA0", True),
        ("01.2", "1.02", True),
        ("1.0.0", "1.0.0.post1", False),
        ("1.0", "1.0+local", False),
    ],
)
def test_version_spellings(va, vb, equal):
    from envlock.diff import _versions_equal

    assert _versions_equal(va, vb) is equal is _packaging_equal(va, vb)


def test_conda_packages_rank_as_libraries_frameworks_or_conda_packages():
    def lock(version: str) -> m.Lock:
        names = ("zlib", "libopenblas", "pytorch")
        return m.Lock(conda=m.CondaSection(packages=tuple(m.CondaPackage(name=n, version=version) for n in names)))

    found = {f.path: (f.layer, f.rank) for f in diff(lock("1"), lock("2")) if f.status != "unknown"}
    assert found == {
        "conda.packages[libopenblas]": ("blas", 40),
        "conda.packages[pytorch]": ("framework", 70),
        "conda.packages[zlib]": ("conda", 85),
    }
