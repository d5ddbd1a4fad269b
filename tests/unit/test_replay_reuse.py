"""What lets a replay with no change skip the build and the capture, and what verify accepts as a pinned install."""

from __future__ import annotations

from pathlib import Path

from envlock import records
from envlock.lockfile import model as m
from envlock.replay.context import ContextFile, context_digest
from envlock.replay.verify import capture_key, installed_from_pins

REQUIREMENTS = b"six @ https://files.example/six-1.16.0-py2.py3-none-any.whl --hash=sha256:" + b"1" * 64 + b"\n"


def test_the_same_context_has_the_same_digest_whatever_the_order_of_its_files() -> None:
    files = [ContextFile("Dockerfile", b"FROM x\n"), ContextFile("envlock/python/requirements-1.txt", REQUIREMENTS)]
    assert context_digest(files, "base sha256:aa") == context_digest(list(reversed(files)), "base sha256:aa")


def test_one_changed_byte_mode_or_fact_changes_the_digest() -> None:
    files = [ContextFile("Dockerfile", b"FROM x\n"), ContextFile("envlock/python/requirements-1.txt", REQUIREMENTS)]
    first = context_digest(files, "base sha256:aa", "buildkit")
    same_length = REQUIREMENTS.replace(b"1.16.0", b"1.17.0")
    assert len(same_length) == len(REQUIREMENTS)
    changed = [files[0], ContextFile("envlock/python/requirements-1.txt", same_length)]
    assert context_digest(changed, "base sha256:aa", "buildkit") != first
    executable = [files[0], ContextFile("envlock/python/requirements-1.txt", REQUIREMENTS, mode=0o755)]
    assert context_digest(executable, "base sha256:aa", "buildkit") != first
    assert context_digest(files, "base sha256:bb", "buildkit") != first
    assert context_digest(files, "base sha256:aa", "sdk") != first
    # A fact cannot be confused with a neighbour's text.
    assert context_digest(files, "a", "bc") != context_digest(files, "ab", "c")


def test_a_file_sent_from_disk_counts_by_name_and_size(tmp_path: Path) -> None:
    wheel = tmp_path / "six-1.16.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"a" * 100)
    files = [ContextFile("envlock/wheels/six.whl", source=str(wheel))]
    first = context_digest(files)
    wheel.write_bytes(b"a" * 101)
    assert context_digest(files) != first
    renamed = [ContextFile("envlock/wheels/other.whl", source=str(wheel))]
    assert context_digest(renamed) != context_digest(files)


def test_capture_key_names_image_probe_and_interpreter() -> None:
    key = capture_key("sha256:" + "a" * 64, b"probe", "/opt/venv/bin/python", None)
    assert key != capture_key("sha256:" + "b" * 64, b"probe", "/opt/venv/bin/python", None)
    assert key != capture_key("sha256:" + "a" * 64, b"probe 2", "/opt/venv/bin/python", None)
    assert key != capture_key("sha256:" + "a" * 64, b"probe", "python", None)
    assert key != capture_key("sha256:" + "a" * 64, b"probe", "/opt/venv/bin/python", "/usr/bin/python3")


SIX_URL = "https://files.example/packages/six-1.16.0-py2.py3-none-any.whl"


def _section(*packages: m.PythonPackage) -> m.PythonSection:
    return m.PythonSection(version="3.11.7", packages=packages)


def _pinned() -> m.PythonPackage:
    return m.PythonPackage(
        name="six",
        version="1.16.0",
        source="index",
        file="six-1.16.0-py2.py3-none-any.whl",
        file_url=SIX_URL,
        file_sha256="sha256:" + "1" * 64,
    )


def test_a_pinned_file_installed_by_its_url_or_from_the_wheelhouse_is_the_locks_index_package() -> None:
    locked = _section(_pinned())
    for url in (SIX_URL, "file:///tmp/envlock/wheels/six-1.16.0-py2.py3-none-any.whl"):
        image = _section(
            m.PythonPackage(name="Six", version="1.16.0", source="url", url=url, archive_hash="sha256:" + "1" * 64)
        )
        (got,) = installed_from_pins(locked, image).packages
        assert (got.source, got.url, got.archive_hash) == ("index", None, None)


def test_anything_else_is_left_as_captured() -> None:
    locked = _section(_pinned())
    others = (
        m.PythonPackage(
            name="six", version="1.16.0", source="url", url="https://elsewhere.example/six-1.16.0-py2.py3-none-any.whl"
        ),
        m.PythonPackage(name="six", version="1.17.0", source="url", url=SIX_URL),
        m.PythonPackage(name="six", version="1.16.0", source="url", url="file:///tmp/other-1.16.0-py3-none-any.whl"),
        m.PythonPackage(name="six", version="1.16.0", source="vcs", url=SIX_URL),
    )
    for package in others:
        assert installed_from_pins(locked, _section(package)).packages == (package,)
    unpinned = _section(records.replace(_pinned(), file_url=None))
    package = m.PythonPackage(name="six", version="1.16.0", source="url", url=SIX_URL)
    assert installed_from_pins(unpinned, _section(package)).packages == (package,)


def _conda_lock(*python: m.PythonPackage) -> m.Lock:
    conda = m.CondaSection(
        packages=(
            m.CondaPackage(name="pytorch", version="2.1.0", build="py3.11_cpu_0", sha256="sha256:" + "2" * 64),
            m.CondaPackage(name="six", version="1.16.0", build="pyhd8ed1ab_0", sha256="sha256:" + "3" * 64),
        )
    )
    return m.Lock(conda=conda, python=m.PythonSection(version="3.11.7", packages=python))


def test_conda_libraries_an_imported_lock_names_only_as_conda_packages_are_not_only_in_the_image() -> None:
    from envlock.replay.verify import compare_image

    requests = m.PythonPackage(name="requests", version="2.31.0", installer="pip")
    # conda-lock's lock: pip's requests in the Python layer, conda's torch and six only as conda packages.
    imported = _conda_lock(requests)
    image = records.replace(
        imported,
        python=m.PythonSection(
            version="3.11.7",
            packages=(
                requests,
                m.PythonPackage(name="torch", version="2.1.0", installer="conda"),
                m.PythonPackage(name="six", version="1.16.0", installer="conda"),
            ),
        ),
    )
    assert compare_image(imported, image) == []
    # What pip put there without the lock is still reported, and so is a conda library a captured lock lists.
    stray = m.PythonPackage(name="idna", version="3.4", installer="pip")
    with_stray = records.replace(image, python=records.replace(image.python, packages=(*image.python.packages, stray)))
    assert [f.path for f in compare_image(imported, with_stray)] == ["python.packages[idna]"]
    captured = _conda_lock(requests, m.PythonPackage(name="six", version="1.16.0", installer="conda"))
    older_six = records.replace(
        image,
        python=m.PythonSection(
            version="3.11.7", packages=(requests, m.PythonPackage(name="six", version="1.15.0", installer="conda"))
        ),
    )
    assert [f.path for f in compare_image(captured, older_six)] == ["python.packages[six]"]
