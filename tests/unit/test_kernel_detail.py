"""Per-library kernel lists in the lock (issue 16): written, read back, validated."""

from __future__ import annotations

import pytest

from envlock.lockfile import model as m
from envlock.lockfile.io import LockfileError, parse_lock
from envlock.lockfile.write import dumps_lock

CUFFT = "nvidia/cu13/lib/libcufft.so.12"
CUFFTW = "nvidia/cu13/lib/libcufftw.so.12"


def _lock_text() -> str:
    pkg = m.PythonPackage(
        name="nvidia-cufft", version="12.0.0.61", cuda_sass=("sm_75", "sm_90"), cuda_ptx=("compute_90",)
    )
    libraries = (
        m.CudaLibrary("nvidia-cufft", CUFFTW, ("sm_75",), ()),
        m.CudaLibrary("nvidia-cufft", CUFFT, ("sm_75", "sm_90"), ("compute_90",)),
    )
    return dumps_lock(m.Lock(python=m.PythonSection(packages=(pkg,), cuda_libraries=libraries)))


def test_library_lists_round_trip_sorted_by_file():
    text = _lock_text()
    assert '[[python.cuda-libraries]]\npackage = "nvidia-cufft"\nfile = "nvidia/cu13/lib/libcufft.so.12"' in text
    python = parse_lock(text.encode()).lock.python
    assert [(lib.package, lib.file, lib.sass, lib.ptx) for lib in python.cuda_libraries] == [
        ("nvidia-cufft", CUFFT, ("sm_75", "sm_90"), ("compute_90",)),
        ("nvidia-cufft", CUFFTW, ("sm_75",), ()),
    ]
    assert python.packages[0].cuda_sass == ("sm_75", "sm_90")


@pytest.mark.parametrize(
    ("replacement", "problem"),
    [
        ('file = "../../../etc/passwd"', "python.cuda-libraries[0].file"),
        ('file = "/usr/lib/libcufft.so"', "python.cuda-libraries[0].file"),
        ('sass = ["sm_75; rm -rf /"]', "python.cuda-libraries[0].sass"),
        ('package = "nvidia cufft"', "python.cuda-libraries[0].package"),
    ],
)
def test_hostile_library_entries_are_refused_by_field(replacement, problem):
    text = _lock_text()
    key = replacement.split(" = ")[0]
    first = next(line for line in text.splitlines() if line.startswith(key + " = "))
    bad = text.replace("\n" + first + "\n", "\n" + replacement + "\n", 1)
    assert bad != text
    with pytest.raises(LockfileError) as info:
        parse_lock(bad.encode())
    assert problem in str(info.value)
