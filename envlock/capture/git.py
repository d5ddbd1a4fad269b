"""The project layer: the git state of the code that produced a result.

Commit, branch, whether the work tree has changes, a sha256 of the
uncommitted diff (so a reader can tell *which* local changes were in effect
without the lock carrying them), and the ``origin`` remote with credentials
removed.  ``None`` outside a git work tree or without git.

Git runs through ``proc.run`` (argv list, ``git -C DIR``) with settings that
keep the probe read-only and inert inside a repository we do not control:
no optional index locks (another process may be committing), no fsmonitor
hook, no external diff or textconv program, no pager, no prompt.
"""

from __future__ import annotations

import os

from envlock import proc
from envlock.capture.privacy import normalize_remote_url, scrub_text
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs every command ~3 ms
    from typing import Any

_GIT_ENV_OVERRIDES = {
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not take .git/index.lock
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
# Per-command settings that disable repository-configured programs.
_SAFE_CONFIG = ("-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false")


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(_GIT_ENV_OVERRIDES)
    return env


def _git(directory: str, *args: str, text: bool = True) -> Any:
    return proc.run(["git", "-C", directory, *_SAFE_CONFIG, *args], timeout=30, env=_git_env(), text=text)


# --- pure parsing ---------------------------------------------------------------


def parse_status_v2(output: str) -> tuple[str | None, str | None, bool]:
    """(commit, branch, dirty) from ``git status --porcelain=v2 --branch -z`` (pure).

    One git call answers all three (measured: 4 git calls cost 40-60 ms of a
    capture on the loaded 2-core box; this one ~10 ms).  A repository with no
    commit yet reports ``(initial)``; a detached HEAD reports ``(detached)``;
    both are recorded as absent.  Untracked files count as dirty: a new
    script can change a result.
    """
    commit = branch = None
    dirty = False
    for entry in output.split("\0"):
        if entry.startswith("# branch.oid "):
            value = entry[len("# branch.oid ") :].strip()
            commit = value if chk.git_commit(value) is None else None
        elif entry.startswith("# branch.head "):
            value = entry[len("# branch.head ") :].strip()
            branch = None if value in ("(detached)", "") else value
        elif entry and not entry.startswith("#"):
            # Renames (type 2) carry their original path as the next
            # NUL-separated field; it only ever makes dirty true again.
            dirty = True
    return commit, branch, dirty


def diff_hash(diff: bytes) -> str | None:
    """``sha256:<hex>`` of the uncommitted diff, or ``None`` when there is none (pure)."""
    if not diff:
        return None
    import hashlib  # only for a dirty work tree

    return "sha256:" + hashlib.sha256(diff).hexdigest()


# --- probe ------------------------------------------------------------------------


def probe_project(ctx: Any) -> m.ProjectSection | None:
    directory = os.path.abspath(getattr(ctx, "project_dir", ".") or ".")
    status = _git(directory, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal")
    if status is None or status.returncode != 0:
        # No git, not a work tree (or a bare repository), or one git refuses
        # to read (safe.directory): no project layer.
        return None
    commit, branch, dirty = parse_status_v2(status.stdout)
    if branch is not None and chk.path_text(branch) is not None:
        ctx.warn(f"project.branch: {scrub_text(chk.path_text(branch) or '')}; not recorded")
        branch = None

    hashed: str | None = None
    if dirty and commit is not None:
        # The hash covers changes to tracked files; untracked ones make the
        # tree dirty but are not part of `git diff HEAD`.
        diff = _git(directory, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", text=False)
        if diff is not None and diff.returncode == 0:
            hashed = diff_hash(diff.stdout)
        else:
            ctx.warn("project.diff-hash: `git diff HEAD` failed; not recorded")

    remote = None
    origin = _git(directory, "config", "--get", "remote.origin.url")
    if origin is not None and origin.returncode == 0 and origin.stdout.strip():
        remote = normalize_remote_url(origin.stdout.strip())
        problem = chk.url(remote)
        if problem:
            ctx.warn(f"project.remote: the origin URL {scrub_text(problem)}; not recorded")
            remote = None
    return m.ProjectSection(commit=commit, branch=branch, dirty=dirty, diff_hash=hashed, remote=remote)
