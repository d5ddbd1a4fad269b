"""The base-image matrix (``data/base_images.csv``) and a pure chooser over it.

Each row says which image provides which Python minor on which distribution,
with which CUDA/cuDNN (``nvidia/cuda`` rows) and where its Python comes from:
``image`` (already in the image: the official ``python`` images, and the
``debootstrap`` bases that envlock builds itself from a Debian mirror) or
``apt`` (installed from the distribution's archive in the Dockerfile).  The file
is sorted (a test checks it) so that a refresh shows up as a small diff.

The chooser never guesses across a Python minor: a cp311 wheel does not install
on 3.10, so when no row has the locked minor the error lists what there is.
"""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from importlib import resources

from envlock.errors import ReplayError
from envlock.records import record
from envlock.versions import release_tuple

KINDS = ("python", "distro", "cuda", "debootstrap")
# Preference when several rows fit equally well: Python already in the image
# first (no apt step, the interpreter the official image maintains).
_KIND_PREFERENCE = {"python": 0, "debootstrap": 1, "distro": 2, "cuda": 3}

# An image reference as `docker pull` takes it: [registry[:port]/]path[:tag][@sha256:digest].
# Anchored and narrow on purpose (THREATS.md B4): no whitespace, no `--platform=`, no `AS`.
_IMAGE_REF = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?"
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@record
class BaseImage:
    kind: str
    python: str  # major.minor
    distro: str
    distro_version: str
    cuda: str | None  # major.minor of the CUDA toolkit in the image
    cudnn: str | None  # cuDNN major
    flavor: str | None  # runtime / devel for CUDA images
    image: str
    python_patch: str | None  # fixed by the distribution, or None when the tag floats
    python_from: str  # "image" or "apt"
    source: str

    def describe(self) -> str:
        parts = [f"Python {self.python}", f"{self.distro} {self.distro_version}"]
        if self.cuda:
            parts.append(f"CUDA {self.cuda}" + (f" cuDNN {self.cudnn}" if self.cudnn else "") + f" {self.flavor}")
        return f"{self.image} ({', '.join(parts)})"


def check_image_ref(ref: str, what: str = "base image") -> str:
    """``ref`` if it is a plain image reference, else ``ReplayError`` naming the problem."""
    if not isinstance(ref, str) or len(ref) > 512 or not _IMAGE_REF.fullmatch(ref):
        shown = str(ref)[:80]
        raise ReplayError(
            f"{what}: {shown!r} is not an image reference like python:3.11-slim-bookworm or name@sha256:<64 hex>",
            hint="give a plain reference: no spaces, options (--platform=...) or stage names (AS ...)",
        )
    return ref


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ReplayError(f"base image digest: {str(digest)[:80]!r} is not sha256:<64 lowercase hex>")
    return digest


def parse_matrix(text: str) -> tuple[BaseImage, ...]:
    """Rows of the CSV matrix (pure); a malformed row is a programming error in the data file."""
    rows = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        if row["kind"] not in KINDS:
            raise ValueError(f"base_images.csv line {number}: unknown kind {row['kind']!r}")
        if row["python_from"] not in ("image", "apt"):
            raise ValueError(f"base_images.csv line {number}: python_from must be image or apt")
        check_image_ref(row["image"], f"base_images.csv line {number}")
        rows.append(
            BaseImage(
                kind=row["kind"],
                python=row["python"],
                distro=row["distro"],
                distro_version=row["distro_version"],
                cuda=row["cuda"] or None,
                cudnn=row["cudnn"] or None,
                flavor=row["flavor"] or None,
                image=row["image"],
                python_patch=row["python_patch"] or None,
                python_from=row["python_from"],
                source=row["source"],
            )
        )
    return tuple(rows)


def read_matrix_text() -> str:
    return resources.files("envlock.replay").joinpath("data").joinpath("base_images.csv").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_matrix() -> tuple[BaseImage, ...]:
    return parse_matrix(read_matrix_text())


@record
class BaseRequest:
    """What the lock asks of a base image."""

    python: str  # major.minor
    distro: str | None = None  # os-release ID: debian, ubuntu, ...
    distro_version: str | None = None  # os-release VERSION_ID
    cuda: str | None = None  # major.minor of a *system* CUDA toolkit, when the lock used one
    cudnn: str | None = None  # major of a system cuDNN
    devel: bool = False  # the lock had nvcc: a devel image
    source: str = "registry"  # "registry" or "debootstrap" (no registry reachable)


def choose_base(request: BaseRequest, matrix: tuple[BaseImage, ...] | None = None) -> BaseImage:
    """The best row for ``request`` (pure), or ``ReplayError`` listing what is available."""
    rows = load_matrix() if matrix is None else matrix
    if request.source == "debootstrap":
        pool = [r for r in rows if r.kind == "debootstrap"]
        if request.cuda:
            raise ReplayError(
                f"the lock used a system CUDA {request.cuda} toolkit, and a base built with debootstrap has no CUDA",
                hint="replay from an nvidia/cuda image (a registry must be reachable), or pass --base-image",
            )
    elif request.cuda:
        pool = [r for r in rows if r.kind == "cuda" and r.cuda == request.cuda]
        if not pool:
            raise ReplayError(
                f"no base image in the matrix has CUDA {request.cuda}; available: "
                + ", ".join(sorted({r.cuda for r in rows if r.cuda}, key=_version_key)),
                hint="pass --base-image IMAGE with that CUDA toolkit (the plan then reports CUDA as unverified)",
            )
    else:
        pool = [r for r in rows if r.kind in ("python", "distro")]
    fitting = [r for r in pool if r.python == request.python]
    if not fitting:
        what = f"Python {request.python}" + (f" with CUDA {request.cuda}" if request.cuda else "")
        if request.source == "debootstrap":
            what += " built with debootstrap"
        available = "; ".join(r.describe() for r in sorted(pool, key=_row_order))
        raise ReplayError(
            f"no base image in the matrix provides {what}; available: {available}",
            hint="pass --base-image IMAGE with that Python (it must have python3 with the venv module)",
        )
    return min(fitting, key=lambda r: _score(r, request))


def _score(row: BaseImage, request: BaseRequest) -> tuple:
    same_distro = row.distro == request.distro
    same_release = same_distro and row.distro_version == request.distro_version
    cudnn_match = request.cudnn is None or row.cudnn == request.cudnn
    flavor_match = row.flavor is None or (row.flavor == "devel") == request.devel
    return (
        not cudnn_match,
        not same_release,
        not same_distro,
        not flavor_match,
        _KIND_PREFERENCE[row.kind],
        # Among the rest, the newest release of the distribution (longest security support).
        tuple(-part for part in _version_key(row.distro_version)),
        row.image,
    )


def _row_order(row: BaseImage) -> tuple:
    return (_version_key(row.python), row.distro, _version_key(row.distro_version), row.image)


def _version_key(text: str | None) -> tuple[int, ...]:
    return release_tuple(text) or ()
