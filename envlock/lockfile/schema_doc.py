"""Generate the field reference of docs/lockfile.md from the model.

A test compares the committed document with this output, so the schema
documentation cannot drift from the code. Re-create it with
``python -m envlock.lockfile.schema_doc > /tmp/x && ...`` (see ``update``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from envlock.lockfile import codec
from envlock.lockfile import model as m

BEGIN = "<!-- BEGIN GENERATED FIELDS (python -m envlock.lockfile.schema_doc --update) -->"
END = "<!-- END GENERATED FIELDS -->"

_TABLES = [
    ("(top level)", m.Lock),
    ("[python]", m.PythonSection),
    ("[[python.packages]]", m.PythonPackage),
    ("[[python.cuda-libraries]]", m.CudaLibrary),
    ("[conda]", m.CondaSection),
    ("[[conda.packages]]", m.CondaPackage),
    ("[os]", m.OsSection),
    ("[[os.packages]]", m.OsPackage),
    ("[base-image]", m.BaseImageSection),
    ("[cuda]", m.CudaSection),
    ("[[cuda.components]]", m.CudaComponent),
    ("[[cuda.frameworks]]", m.FrameworkBuild),
    ("[nvidia]", m.NvidiaSection),
    ("[[nvidia.gpus]]", m.Gpu),
    ("[accelerators]", m.AcceleratorSection),
    ("[[accelerators.devices]]", m.Accelerator),
    ("[cpu]", m.CpuSection),
    ("[runtime]", m.RuntimeSection),
    ("[[runtime.libraries]]", m.NativeLibrary),
    ("[project]", m.ProjectSection),
]

_KIND = {"str": "string", "int": "integer", "bool": "boolean", "strs": "array of strings", "strmap": "table of strings"}


def _check_text(check) -> str:
    if check is None:
        return "printable text, one line"
    name = getattr(check, "__name__", "")
    if name.startswith("check_"):
        return name[len("check_") :].replace("_", " ")
    if name == "check":  # one_of
        cell = check.__closure__[0].cell_contents if check.__closure__ else ()
        return "one of: " + ", ".join(f"`{v}`" for v in cell)
    return {
        "text": "printable text, one line",
        "long_text": "printable text",
        "url": "URL (no credentials, quotes, spaces or $)",
        "path_text": "path (home as ~) or package-relative path",
    }.get(name, name)


def generate() -> str:
    lines = [BEGIN, ""]
    for title, cls in _TABLES:
        lines.append(f"### `{title}`")
        lines.append("")
        lines.append("| key | type | required | allowed values |")
        lines.append("|---|---|---|---|")
        for spec in codec.field_specs(cls):
            if spec.kind in ("model", "models"):
                kind = "table" if spec.kind == "model" else "array of tables"
                allowed = f"see `{spec.key}` below"
            else:
                kind = _KIND[spec.kind]
                allowed = _check_text(spec.check) if spec.kind != "bool" else "`true` / `false`"
                if spec.kind == "int":
                    allowed = f"0 to {codec.MAX_INT}"
            if spec.private:
                allowed += " (private: only with `--include-private`)"
            lines.append(
                f"| `{spec.key}` | {kind} | {'yes' if spec.required or spec.key == 'lock-version' else 'no'} | {allowed} |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def update(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + generate() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update(Path(__file__).resolve().parents[2] / "docs" / "lockfile.md")
    else:
        print(generate())
