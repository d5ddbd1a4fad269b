"""Fleet capture's pure parts: the frames a node's lock travels in, srun's words about nodes, the fleet check.

The end-to-end tests against a real Slurm cluster are in tests/slurm/.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from envlock.errors import UsageError
from envlock.fleet.check import check_nodes
from envlock.fleet.protocol import MAGIC, error_frame, lock_frames, read_frames
from envlock.fleet.slurm import check_user_args, parse_srun_stderr, srun_argv
from envlock.lockfile import model as m
from envlock.lockfile.write import write_lock
from tests.conftest import DATA, run_envlock

LOCK_TEXT = ("# a lock\n" + "x" * 10_000 + "\n").encode()


def test_frames_round_trip_interleaved_with_other_nodes_and_noise():
    a = lock_frames("node1", LOCK_TEXT, 0.25)
    b = lock_frames("gpu-007.cluster", b"short lock\n", 1.5)
    assert len(a) == 2 + 19  # 10,010 bytes in 540-byte parts
    assert max(len(line) for line in a) < 1000  # srun --label keeps lines up to 1,024 bytes whole
    # srun interleaves nodes line by line; other programs print too.
    mixed = ["Welcome to the cluster\n"]
    for i in range(max(len(a), len(b))):
        mixed += a[i : i + 1] + b[i : i + 1]
    mixed.append("module: warning: something\n")
    got = read_frames("".join(mixed))
    assert list(got) == ["node1", "gpu-007.cluster"]
    assert got["node1"].lock == LOCK_TEXT and got["node1"].seconds == 0.25 and got["node1"].error is None
    assert got["gpu-007.cluster"].lock == b"short lock\n"


def test_a_labelled_srun_prefix_is_tolerated():
    lines = [f"2: {line}" for line in lock_frames("node3", b"lock\n", 0.1)]
    assert read_frames("".join(lines))["node3"].lock == b"lock\n"


def _frames(node: str, data: bytes) -> list[str]:
    return lock_frames(node, data, 0.1)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: f[:-1], "ended before its lock was complete"),
        (lambda f: [f[0], f[2], f[1], *f[3:]], "missing or out of order"),
        (lambda f: [f[0], *f[2:]], "missing or out of order"),
        (lambda f: [f[0].replace(f[0].split()[4], "0" * 64), *f[1:]], "does not match the sha256"),
        (lambda f: [f[0], f[1].replace(f[1].split()[4][:8], "!!!!!!!!"), *f[2:]], "not valid base64"),
        (lambda f: [f[0].replace(f" {len(LOCK_TEXT)} ", " 10 "), *f[1:]], "more bytes than its header announced"),
        (lambda f: [f[0].replace(f" {len(LOCK_TEXT)} ", " 99999999999 "), *f[1:]], "over the 8388608-byte limit"),
        (lambda f: [f[0], *f], "started sending its lock twice"),
        (lambda f: f[1:], "outside its header and end"),
    ],
)
def test_damaged_frames_become_that_nodes_error(damage, expected):
    frames = damage(_frames("node1", LOCK_TEXT))
    result = read_frames("".join(frames))["node1"]
    assert result.lock is None
    assert expected in result.error


def test_a_node_name_that_is_not_a_file_name_is_refused():
    frames = _frames("../../etc/passwd", b"lock\n")
    got = read_frames("".join(frames))
    assert list(got) == ["(invalid node name)"]
    assert got["(invalid node name)"].lock is None
    assert "not a valid node name" in got["(invalid node name)"].error


def test_error_frame_carries_the_nodes_message():
    got = read_frames(error_frame("node2", "capture failed: disk full\nsecond line"))
    assert got["node2"].error == "capture failed: disk full\nsecond line"
    assert got["node2"].lock is None


def test_a_node_that_only_announces_nothing_sends_no_lock():
    assert read_frames(f"{MAGIC} node4 end 0.1\n")["node4"].error == "the node ended a lock it never began"


def test_frame_header_names_size_and_sha256_independently_computed():
    header = lock_frames("n1", b"abc", 0.0)[0].split()
    assert header[3] == "3"
    assert header[4] == hashlib.sha256(b"abc").hexdigest()
    chunk = lock_frames("n1", b"abc", 0.0)[1].split()
    assert base64.b64decode(chunk[4]) == b"abc"


# --- srun ---------------------------------------------------------------------------


def _recorded(name: str) -> str:
    return (DATA / "slurm" / name).read_text()


def test_srun_stderr_all_nodes_launched():
    nodes, errors, other = parse_srun_stderr(_recorded("srun-v-three-nodes.stderr"))
    assert nodes == ("node1", "node2", "node3")
    assert errors == {} and other == ()


def test_srun_stderr_node_down_is_named_with_slurms_words():
    nodes, errors, other = parse_srun_stderr(_recorded("srun-v-node-down.stderr"))
    assert nodes == ("node1", "node2", "node3")
    assert errors == {"node3": "Communication connection failure"}
    assert other == ()  # "Application launch failed" restates node3's failure


def test_srun_stderr_task_exit_status_is_named():
    nodes, errors, _ = parse_srun_stderr(_recorded("srun-v-task-exit-1.stderr"))
    assert nodes == ("node1", "node2", "node3")
    assert errors == {"node2": "Exited with exit code 1"}


def test_srun_stderr_allocation_error_names_no_node():
    nodes, errors, other = parse_srun_stderr(
        "srun: error: Unable to allocate resources: Invalid partition name specified\n"
    )
    assert nodes == () and errors == {}
    assert other == ("Unable to allocate resources: Invalid partition name specified",)


@pytest.mark.parametrize("arg", ["-o", "--output=x", "-ofile", "--error", "-e", "--pty", "--ntasks-per-node=2"])
def test_srun_options_that_would_break_the_step_are_refused(arg):
    with pytest.raises(UsageError) as err:
        check_user_args(["-N", "3", arg])
    assert arg.split("=")[0][:2] in err.value.message


def test_srun_argv_keeps_the_users_options_before_the_task():
    argv = srun_argv(["-N", "8", "-p", "gpu"], ["python", "-m", "envlock.fleet.node"])
    assert argv[:5] == ["srun", "-v", "--label", "--ntasks-per-node=1", "--kill-on-bad-exit=0"]
    assert argv[5:9] == ["-N", "8", "-p", "gpu"]
    assert argv[9:] == ["python", "-m", "envlock.fleet.node"]


# --- fleet check ----------------------------------------------------------------------


def _node(driver: str = "580.65.06", omp: str | None = None) -> m.Lock:
    return m.Lock(
        nvidia=m.NvidiaSection(
            driver_present=True,
            driver_version=driver,
            gpus=(m.Gpu(index=0, name="NVIDIA H200", compute_capability="9.0"),),
        ),
        runtime=m.RuntimeSection(env={"OMP_NUM_THREADS": omp} if omp else {}),
        project=m.ProjectSection(commit="a" * 40),
    )


def test_fleet_check_groups_nodes_that_drifted_the_same_way():
    reference = _node()
    nodes = [(f"n{i}", _node()) for i in range(5)]
    nodes += [("n5", _node(driver="550.54.15")), ("n6", _node(driver="550.54.15")), ("n7", _node(omp="4"))]
    # The git state of the job's directory is not the node's: never drift.
    nodes.append(
        ("n8", m.Lock(nvidia=_node().nvidia, runtime=_node().runtime, project=m.ProjectSection(commit="b" * 40)))
    )
    result = check_nodes(reference, nodes, {"n9": "Communication connection failure"})
    assert result.matching == ("n0", "n1", "n2", "n3", "n4", "n8")
    assert [g.nodes for g in result.drifted] == [("n5", "n6"), ("n7",)]
    assert [(f.path, f.locked, f.actual) for f in result.drifted[0].findings] == [
        ("nvidia.driver-version", "580.65.06", "550.54.15")
    ]
    assert [(f.path, f.locked, f.actual) for f in result.drifted[1].findings] == [
        ("runtime.env.OMP_NUM_THREADS", None, "4")
    ]
    assert result.failed == {"n9": "Communication connection failure"}
    assert not result.ok
    assert check_nodes(reference, nodes[:5]).ok


# --- envlock diff DIR -----------------------------------------------------------------------


def test_diff_of_a_fleet_directory_labels_locks_by_node(tmp_path):
    for name, lock in (("node1", _node()), ("node2", _node()), ("node3", _node(driver="550.54.15", omp="4"))):
        write_lock(lock, tmp_path / f"{name}.lock")
    (tmp_path / "notes.txt").write_text("not a lock")
    result = run_envlock("diff", str(tmp_path))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "3 locks compared: 2 groups of identical locks; 2 match the majority in every layer, 1 outlier in 1 group"
    )
    at = lines.index("outliers, most likely to change numbers first:")
    assert lines[at + 1] == "  1 lock differs: node3"
    assert lines[at + 2].split() == ["numeric", "nvidia.driver-version:", "majority", "580.65.06,", "here", "550.54.15"]
    assert lines[at + 3].split() == ["numeric", "runtime.env.OMP_NUM_THREADS:", "majority", "unset,", "here", "4"]


def test_diff_of_a_fleet_directory_follows_fleet_json(tmp_path):
    write_lock(_node(), tmp_path / "node1.lock")
    write_lock(_node(), tmp_path / "node2.lock")
    # A lock left by an earlier run, for a node that failed this time: not part of this fleet.
    write_lock(_node(driver="470.00.00"), tmp_path / "node3.lock")
    index = {
        "fleet-format": 1,
        "nodes": [
            {"name": "node1", "status": "captured", "lock": "node1.lock"},
            {"name": "node2", "status": "captured", "lock": "node2.lock"},
            {"name": "node3", "status": "failed", "error": "Communication connection failure"},
        ],
    }
    (tmp_path / "fleet.json").write_text(json.dumps(index))
    result = run_envlock("diff", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("lock_name", ["../outside.lock", "/etc/passwd", "sub/dir.lock", ".."])
def test_a_fleet_json_naming_a_path_outside_the_directory_is_refused(tmp_path, lock_name):
    write_lock(_node(), tmp_path / "node1.lock")
    index = {
        "nodes": [
            {"name": "node1", "status": "captured", "lock": "node1.lock"},
            {"name": "x", "status": "captured", "lock": lock_name},
        ]
    }
    (tmp_path / "fleet.json").write_text(json.dumps(index))
    result = run_envlock("diff", str(tmp_path))
    assert result.returncode == 2
    assert "not a plain file name" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_thousand_node_fleet_reads_summary_first_and_fits_a_screen(tmp_path):
    drivers = ["550.54.15"] * 950 + [f"535.{i}.01" for i in range(30)] + ["470.1.1"] * 20
    for i, driver in enumerate(drivers):
        write_lock(_node(driver=driver), tmp_path / f"gpu{i:04d}.lock")
    result = run_envlock("diff", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "1000 locks compared: 32 groups of identical locks; 950 match the majority in every layer, "
        "50 outliers in 31 groups"
    )
    assert len(lines) < 50
    assert (
        lines[-1] == "... and 21 more groups of outliers (21 locks); --verbose shows every group, --json every finding"
    )
    verbose = run_envlock("diff", "--verbose", str(tmp_path)).stdout.splitlines()
    assert sum(1 for line in verbose if "differ" in line and line.startswith("  ")) == 31


def test_nodes_are_listed_in_natural_name_order():
    from envlock.fleet.collect import natural_key

    names = ["node10", "node2", "gpu-b01", "node1", "gpu-a10", "gpu-a9"]
    assert sorted(names, key=natural_key) == ["gpu-a9", "gpu-a10", "gpu-b01", "node1", "node2", "node10"]
