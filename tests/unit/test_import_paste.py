"""What pasting does to a tool's output (quotes, fences, <details>, prompts, e-mail folding, CRLF),
filtered and cut-off nvidia-smi reports, and freeze lines whose version cannot be read.

The inputs are real corpus files (tests/data/corpus/*/NAME.source.txt) put through what a mail
client or an issue editor does to them; expected values were read from the files by eye.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envlock.errors import FormatError
from envlock.formats.importers import import_bytes
from envlock.lockfile import dumps_lock

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
TABLE = (CORPUS / "nvidia_smi" / "05.table.rtx3090.535.161.07.txt").read_text()
QUERY_H100 = (CORPUS / "nvidia_smi" / "13.query.h100x8.535.161.08.txt").read_text()


def text_import(fmt: str, text: str):
    return import_bytes(fmt, text.encode("utf-8"), "input")


def mail_fold(text: str, width: int = 72) -> str:
    """What a mail client does to long lines: break at the last space before ``width``, dropping it."""
    out = []
    for line in text.split("\n"):
        line = line.rstrip()
        while len(line) > width and " " in line[1:width]:
            cut = line.rfind(" ", 1, width)
            out.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        out.append(line)
    return "\n".join(out)


def gpus(lock):
    return [(g.index, g.name, g.memory_total_mib) for g in lock.nvidia.gpus]


def test_an_unwrapped_table_reads_as_the_original():
    assert gpus(text_import("nvidia-smi", TABLE)) == [(0, "NVIDIA GeForce RTX 3090", 24576)]


@pytest.mark.parametrize("width", [72, 76, 80])
def test_a_table_folded_by_a_mail_client_imports_its_gpus(width):
    folded = mail_fold(TABLE, width)
    assert folded != TABLE
    lock = text_import("nvidia-smi", folded)
    assert gpus(lock) == [(0, "NVIDIA GeForce RTX 3090", 24576)]
    assert lock.nvidia.driver_version == "535.161.07"
    assert any("folded" in w for w in lock.capture_warnings)


def test_a_table_quoted_in_a_mail_reply_and_folded():
    quoted = "\n".join("> " + line for line in mail_fold(TABLE).split("\n"))
    lock = text_import("nvidia-smi", quoted)
    assert gpus(lock) == [(0, "NVIDIA GeForce RTX 3090", 24576)]
    assert any("quote marks" in w for w in lock.capture_warnings)


def test_a_gpu_row_that_cannot_be_read_is_never_silently_zero_gpus():
    broken = TABLE.replace(
        "|   0  NVIDIA GeForce RTX 3090        On  | 00000000:C1:00.0 Off |", "|   0  NVIDIA GeForce RTX 3090 ?? On"
    )
    lock = text_import("nvidia-smi", broken)
    assert lock.nvidia.gpus == ()
    assert any("looks like a GPU's row" in w and "line 9" in w for w in lock.capture_warnings)


@pytest.mark.parametrize(
    "wrap",
    [
        "```\n{}\n```\n",
        "Here is my output:\n\n```text\n{}\n```\n\nThanks!\n",
        "<details>\n<summary>nvidia-smi</summary>\n\n```\n{}\n```\n</details>\n",
        "$ nvidia-smi\n{}\n$ \n",
        "(base) ann@gpu01:~/proj$ nvidia-smi\n{}\n",
        "PS C:\\Users\\ann> nvidia-smi\n{}\n",
    ],
)
def test_paste_wrappings_are_removed_and_said(wrap):
    lock = text_import("nvidia-smi", wrap.format(TABLE))
    assert gpus(lock) == [(0, "NVIDIA GeForce RTX 3090", 24576)]
    assert any(w.startswith("cleaned the paste") for w in lock.capture_warnings)
    assert "ann" not in dumps_lock(lock)


def test_crlf_is_cleaned_and_a_stray_cr_is_refused_with_its_line():
    lock = text_import("pip-freeze", "numpy==1.26.4\r\nscipy==1.13.0\r\n")
    assert {p.name: p.version for p in lock.python.packages} == {"numpy": "1.26.4", "scipy": "1.13.0"}
    assert any("CRLF" in w for w in lock.capture_warnings)
    with pytest.raises(FormatError) as err:
        text_import("pip-freeze", "numpy==1.26.4\r\nscipy==1.13.0\revil==1.0\n")
    assert "line 2" in err.value.message


def test_two_fenced_blocks_are_ambiguous_and_refused_with_the_line():
    text = "```\nnumpy==1.26.4\n```\nand on the other machine\n```\nnumpy==2.0.0\n```\n"
    with pytest.raises(FormatError) as err:
        text_import("pip-freeze", text)
    assert "line 5" in err.value.message and "fenced" in err.value.message


def test_a_fence_never_closed_reads_what_it_has_and_says_it_may_be_cut():
    lock = text_import("pip-freeze", "```\nnumpy==1.26.4\nscipy==1.1")
    assert {p.name: p.version for p in lock.python.packages} == {"numpy": "1.26.4", "scipy": "1.1"}
    assert any("never closed" in w for w in lock.capture_warnings)


# --- nvidia-smi -q views ------------------------------------------------------------------


def _blocks(text: str) -> tuple[str, list[str]]:
    head, *rest = text.split("\nGPU 0000")
    return head, ["GPU 0000" + block for block in rest]


def test_a_single_gpu_query_view_is_complete_input():
    head, blocks = _blocks(QUERY_H100)
    assert len(blocks) == 8 and "Attached GPUs                             : 8" in head
    lock = text_import("nvidia-smi", head + "\n" + blocks[1])  # nvidia-smi -q -i 1
    assert [(g.index, g.name, g.memory_total_mib) for g in lock.nvidia.gpus] == [(1, "NVIDIA H100 80GB HBM3", 81559)]
    assert lock.nvidia.driver_version == "535.161.08"
    assert any("shows 1 of the 8 attached GPUs" in w for w in lock.capture_warnings)


def test_a_query_view_filtered_by_section_is_complete_input():
    # nvidia-smi -q -d MEMORY: each GPU block has only its memory sections, no Product Name.
    head, blocks = _blocks(QUERY_H100)
    memory_only = []
    for block in blocks:
        lines = block.split("\n")
        start = next(i for i, line in enumerate(lines) if line.startswith("    FB Memory Usage"))
        memory_only.append("\n".join([lines[0], *lines[start : start + 5]]))
    lock = text_import("nvidia-smi", head + "\n" + "\n".join(memory_only) + "\n")
    assert (lock.nvidia.driver_version, lock.nvidia.cuda_driver_version) == ("535.161.08", "12.2")
    assert lock.nvidia.gpus == ()
    assert any("8 GPU sections name no model" in w for w in lock.capture_warnings)


def test_a_query_cut_mid_line_keeps_what_it_has_and_says_so():
    head, blocks = _blocks(QUERY_H100)
    text = head + "\n" + "\n".join(blocks[:3])
    cut = text[: text.index("Power Readings", text.index(blocks[2][:60]))] + "Power Rea"
    lock = text_import("nvidia-smi", cut)
    assert [g.index for g in lock.nvidia.gpus] == [0, 1, 2]
    assert lock.nvidia.gpus[2].name == "NVIDIA H100 80GB HBM3"
    warnings = " ".join(lock.capture_warnings)
    assert "middle of a line" in warnings and "shows 3 of the 8" in warnings


# --- freeze lines whose version cannot be read --------------------------------------------

CONDA_FREEZE = """\
certifi==2024.8.30
mkl-fft @ file:///C:/Users/runneradmin/croot/mkl_fft_1695058164594/work
numpy @ file:///home/conda/feedstock_root/build_artifacts/numpy_1649806299270/work
-e git+https://github.com/o/baz@0123456789abcdef0123456789abcdef01234567#egg=baz
wheel @ https://example.com/home/pub/wheel-0.43.0-py3-none-any.whl
"""


def test_freeze_lines_keep_every_name_and_urls_stay_whole():
    lock = text_import("pip-freeze", CONDA_FREEZE)
    got = {p.name: (p.version, p.source, p.url) for p in lock.python.packages}
    assert got == {
        "certifi": ("2024.8.30", "index", None),
        "mkl-fft": ("unknown", "directory", "file://~/croot/mkl_fft_1695058164594/work"),
        "numpy": ("unknown", "directory", "file://~/feedstock_root/build_artifacts/numpy_1649806299270/work"),
        "baz": ("unknown", "editable", "https://github.com/o/baz"),
        # a web server's /home/ is nobody's home directory: the URL is kept as it is
        "wheel": ("0.43.0", "url", "https://example.com/home/pub/wheel-0.43.0-py3-none-any.whl"),
    }
    warnings = " ".join(lock.capture_warnings)
    assert "line 2" in warnings and "local build directory gives no version" in warnings
    assert "runneradmin" not in dumps_lock(lock) and "fil~" not in dumps_lock(lock)
