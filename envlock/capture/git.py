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

import hashlib
import os
from typing import Any

from envlock import proc
from envlock.capture.privacy import normalize_remote_url, scrub_text
from envlock.lockfile import fields as chk
from envlock.lockfile import model as m

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


def parse_rev_parse(output: str) -> tuple[str | None, str | None]:
    """(commit, branch) from ``git rev-parse --is-inside-work-tree HEAD --abbrev-ref HEAD`` (pure).

    A detached HEAD reports its branch as ``HEAD``: recorded as no branch.
    """
    lines = output.split("\n")
    if not lines or lines[0].strip() != "true":
        return None, None
    commit = lines[1].strip() if len(lines) > 1 else None
    branch = lines[2].strip() if len(lines) > 2 else None
    if commit and chk.git_commit(commit) is not None:
        commit = None
    if branch in ("", "HEAD"):
        branch = None
    return commit, branch


def diff_hash(diff: bytes) -> str | None:
    """``sha256:<hex>`` of the uncommitted diff, or ``None`` when there is none (pure)."""
    if not diff:
        return None
    return "sha256:" + hashlib.sha256(diff).hexdigest()


# --- probe ------------------------------------------------------------------------


def probe_project(ctx: Any) -> m.ProjectSection | None:
    directory = os.path.abspath(getattr(ctx, "project_dir", ".") or ".")
    state = _git(directory, "rev-parse", "--is-inside-work-tree", "HEAD", "--abbrev-ref", "HEAD")
    if state is None:
        return None  # no git
    commit = branch = None
    if state.returncode == 0:
        commit, branch = parse_rev_parse(state.stdout)
        if commit is None and branch is None:
            return None  # a bare repository or inside .git
    else:
        inside = _git(directory, "rev-parse", "--is-inside-work-tree")
        if inside is None or inside.returncode != 0 or inside.stdout.strip() != "true":
            return None  # not a work tree, or a repository git refuses (safe.directory)
        # A work tree with no commit yet: the branch that the first commit will make.
        head = _git(directory, "symbolic-ref", "-q", "--short", "HEAD")
        if head is not None and head.returncode == 0:
            branch = head.stdout.strip() or None
    if branch is not None and chk.path_text(branch) is not None:
        ctx.warn(f"project.branch: {scrub_text(chk.path_text(branch) or '')}; not recorded")
        branch = None

    dirty: bool | None = None
    hashed: str | None = None
    status = _git(directory, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
    if status is not None and status.returncode == 0:
        # Untracked files count as dirty (a new script can change a result) but
        # are not in the diff: the hash covers changes to tracked files.
        dirty = bool(status.stdout)
    if dirty and commit is not None:
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
