"""Damaged real files: every importer either imports or raises FormatError, nothing else.

Hypothesis cuts real corpus files at random points, splices random bytes into
them and repeats lines; whatever comes out, the only exception allowed out of
an importer is ``FormatError`` (exit 2 in the CLI), and any lock it returns
passes the lockfile's own validation.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envlock.errors import FormatError
from envlock.formats.importers import import_bytes
from envlock.lockfile import codec, dumps_lock, parse_lock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
SAMPLES = [
    ("collect-env", "collect_env/17.txt"),
    ("collect-env", "collect_env/23.txt"),
    ("nvidia-smi", "nvidia_smi/02.table.gh200x4.590.48.01.txt"),
    ("nvidia-smi", "nvidia_smi/11.query.a10.535.129.03.txt"),
    ("pylock", "pylock/pylock.pip-build-project.toml"),
    ("conda-explicit", "conda_explicit/conda-linux-64.zlib.lock"),
    ("conda-env", "conda_env/conda-env-export.win64-pytorch-cu113.yaml"),
    ("conda-lock", "conda_lock/conda-lock.install-with-pip-deps.yml"),
    ("uv-lock", "uv_lock/uv.pytorch-crash-course.lock"),
    ("poetry-lock", "poetry_lock/poetry.fine-tuning-gemma.lock"),
    ("pipfile-lock", "pipfile_lock/Pipfile.classify-my-sentences.lock"),
    ("pixi-lock", "pixi_lock/pixi.deep-learning-course.lock"),
    ("conda-list", "conda_list/02.rows-pip.windows-tf.txt"),
    ("rocm-smi", "rocm_smi/03.json.mi250x.json"),
    ("rocm-smi", "rocm_smi/02.csv.mi100x2.txt"),
    ("nvcc", "nvcc/03.cuda-10.1-prompt.txt"),
    ("nvidia-smi", "nvidia_smi/14.query-i0.gtx1080ti-windows.442.92.txt"),
    ("auto", "conda_list/01.details-fence.pytorch-cu101.txt"),
]
SAMPLE_BYTES = {name: (CORPUS / name).read_bytes()[:6000] for _, name in SAMPLES}
SAMPLE_BYTES["pip-freeze"] = (
    b"numpy==1.26.4\nrequests==2.31.0 \\\n  --hash=sha256:"
    + b"a" * 64
    + b"\n-e ./pkg\nfoo @ https://x.org/foo-1.0-py3-none-any.whl\n"
)
SAMPLES.append(("pip-freeze", "pip-freeze"))


@st.composite
def damaged(draw):
    fmt, name = draw(st.sampled_from(SAMPLES))
    data = SAMPLE_BYTES[name]
    cut = draw(st.integers(0, len(data)))
    data = data[:cut]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        noise = draw(
            st.binary(max_size=24)
            | st.sampled_from(
                [b"\r", b"\n\n", b"`", b"[", b"{", b"- ", b": ", b"==", b"#", b"\xe2\x80\xae", b"&a", b"*a"]
            )
        )
        data = data[:at] + noise + data[at:]
    if draw(st.booleans()) and b"\n" in data:
        lines = data.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        data = b"\n".join(lines)
    return fmt, data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(damaged())
def test_only_format_errors_escape(case):
    fmt, data = case
    try:
        lock = import_bytes(fmt, data, "fuzz")
    except FormatError as exc:
        assert exc.message.startswith("fuzz")
        return
    # Whatever was imported is a lock envlock itself accepts.
    loaded = parse_lock(dumps_lock(lock).encode("utf-8"))
    assert codec.to_dict(loaded.lock) == codec.to_dict(lock)
