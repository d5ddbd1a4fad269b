"""The OS probe pointed at another real system: the Debian minbase image the
suite provisions (scripts/provision.d/docker-base.sh), exported to a folder.

This exercises every ``read_*(root)`` path on files that envlock did not
write: dpkg status and apt states, glibc from the image's own ``libc.so.6``
banner, libstdc++ found through the image's ``ld.so.conf.d``.  Expected values
come from real tools: ``dpkg-query --admindir`` and ``readelf`` on this host,
``getconf`` inside a container of the image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile

import pytest

from envlock.capture import os_info

pytestmark = pytest.mark.docker

IMAGE = "envlock/debian-minbase:bookworm"

# What the probe reads; the rest of the 117 MB image is not unpacked.
_WANTED = re.compile(
    r"(etc/(os-release|ld\.so\.conf(\.d/.*)?)|usr/lib/os-release|var/lib/dpkg/status|var/lib/apt/extended_states"
    r"|lib|lib64|usr/lib/x86_64-linux-gnu/(libc\.so\.6|libstdc\+\+\.so\.6.*))"
)


@pytest.fixture(scope="module")
def image_root(docker_client, tmp_path_factory):
    import docker.errors

    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not built (make provision builds it)")
    root = tmp_path_factory.mktemp("rootfs")
    container = docker_client.containers.create(IMAGE, command=["true"])
    try:
        stream = container.export()
        reader = _ChunkReader(stream)
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for member in archive:
                if _WANTED.fullmatch(member.name.lstrip("./")) and (
                    member.isfile() or member.issym() or member.isdir()
                ):
                    # extraction filters exist from 3.10.12/3.11.4 on; the members are from our own image
                    extra = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
                    archive.extract(member, root, **extra)
    finally:
        container.remove(force=True)
    glibc = docker_client.containers.run(IMAGE, ["getconf", "GNU_LIBC_VERSION"], remove=True).decode().split()[-1]
    return root, glibc


class _ChunkReader:
    """A file-like view of the SDK's chunk iterator, for tarfile's stream mode."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def test_probe_reads_an_exported_debian_image(image_root):
    root, glibc_in_container = image_root
    warnings: list[str] = []
    section = os_info.collect_os(str(root), warn=warnings.append)
    assert warnings == []
    assert (section.id, section.version_id, section.codename) == ("debian", "12", "bookworm")
    assert section.glibc == glibc_in_container

    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query is not installed on this host")
    listing = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={root}/var/lib/dpkg",
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = sorted(tuple(line.split("\t")[1:]) for line in listing.splitlines() if line.startswith("installed\t"))
    assert section.package_manager == "dpkg"
    assert sorted((p.name, p.version, p.architecture) for p in section.packages) == expected
    assert 50 < len(expected) < 400  # a minbase system, not this host's 700-odd packages

    libstdcxx = os_info.find_library("libstdc++.so.6", str(root))
    assert libstdcxx is not None and libstdcxx.startswith(str(root))
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed on this host")
    text = subprocess.run(
        ["readelf", "--version-info", "--wide", libstdcxx], capture_output=True, text=True, check=True
    ).stdout
    defined = re.findall(r"Name: GLIBCXX_([0-9.]+)", text.split("Version needs section")[0])
    assert section.libstdcxx == max(defined, key=lambda v: tuple(int(x) for x in v.split(".")))
