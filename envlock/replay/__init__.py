"""Replay: rebuild an environment from a lock, and prove the match.

API note for the engine (build, base images, verify) and export code
---------------------------------------------------------------------
Pure half (this package's plan/render modules; no Docker, no network)::

    from envlock.replay.plan import ReplayOptions, plan_replay
    from envlock.replay.render import render_context, render_dockerfile

    pins = envlock.resolve.resolve_lock(lock, index_url=..., find_links=...)   # network: the resolver
    plan = plan_replay(lock, ReplayOptions(pins=pins, base_image=None,
                                           base_source="registry" | "debootstrap",
                                           base_digest="sha256:..." | None,   # what the engine resolved
                                           base_facts=BaseFacts(...) | None,  # read from a --base-image
                                           ca_mode="none" | "stage" | "secret", ca_cert=bytes | None,
                                           require_digest=False, allow_sdists=False))
    context = render_context(plan)               # BuildContext
    context.files        # {path: bytes}, sorted; "Dockerfile" at the top; tar it with fixed metadata
    context.wheelhouse   # {context path: local file} to copy in (wheels may be huge; hashes are in the requirements)
    context.secret_ids   # ("envlock-ca",) with ca_mode="secret": pass the --ca-cert file as that BuildKit secret
    plan.findings        # per-layer Findings: exact / differs / not-reproducible, before any build

* ``ca_mode="stage"`` works with both builders (legacy SDK builder included): the CA is copied into
  stage 1 only, and stage 2 copies just /opt/envlock/venv.  ``"secret"`` needs BuildKit.
* The plan is made once, from everything the engine found out first (``orchestrate.find_base``:
  digest, pullable or not, a --base-image's OS release and Python).  A lock whose system CUDA
  toolkit no base image has is planned on the best row without it, with a finding per component.
* ``plan_replay`` raises ``ReplayError`` (exit 2) when no base image fits; the message lists the
  matrix (envlock/replay/data/base_images.csv).  ``base_source="debootstrap"`` chooses the rows
  named ``envlock/python:<minor>-debian-<suite>`` (what envlock.replay.debootstrap_base builds: python3
  and the venv module must be in that image).  Other rows get Python from the image or from apt.
* In the image: the replayed venv is /opt/envlock/venv (first on PATH), the lock is
  /opt/envlock/envlock.lock, the OS package report is /opt/envlock/os-report.json; turn the report
  into findings with ``envlock.replay.os_report.os_report_findings(text, codename)``.  Labels:
  org.envlock.fingerprint, org.envlock.lock, org.envlock.venv, org.envlock.os-report.
* ``envlock.replay.plan.layer_summary(plan.findings)`` -> {layer: {status: count}} for a one-screen summary.
* ``--into-venv DIR``: the command layer (``envlock.commands.replay``: resolves,
  prints, returns 0/1) over ``replay_into_venv(lock, directory, pins, python=, ca_cert=)``
  (library: ``VenvReplay`` with findings; ``ReplayError`` and no venv left behind when pip refuses a file).
* ``render_dockerfile(plan)`` also serves ``envlock export dockerfile``: without ``pins`` the plan
  installs no Python package and says so in its findings.
"""
