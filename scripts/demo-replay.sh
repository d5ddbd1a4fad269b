#!/usr/bin/env bash
# make demo, second half: replay envlock.lock into an image and verify it; the
# replay's verdict screen is the last thing printed (the Markdown version of
# the report is written to envlock-replay.md, not printed).
#
# Called by scripts/demo.sh after the capture. Needs a reachable Docker
# engine; without one it says so and stops (replay's --into-venv needs no
# engine). No image registry is needed: when the default base image cannot
# be pulled, `envlock replay` builds its own from the Debian mirror
# (debootstrap + docker import; about a minute, once) and says so.
set -euo pipefail
bin=${1:-.venv/bin}
lock=${ENVLOCK_DEMO_LOCK:-envlock.lock}
image=${ENVLOCK_DEMO_IMAGE:-envlock-demo:latest}

if ! "$bin/python" -c 'import docker; docker.from_env(timeout=10).ping()' >/dev/null 2>&1; then
  echo "== envlock replay: skipped, no Docker engine is reachable"
  echo "   start one (sudo systemctl start docker, or sudo dockerd &) and run: $bin/envlock replay $lock"
  echo "   without Docker: $bin/envlock replay $lock --into-venv DIR replays the Python layer"
  exit 0
fi

# A TLS-intercepting proxy's CA (this machine's pip uses one): mounted as a
# build secret for pip, in no layer of the image. On other machines the
# system bundle is harmless.
ca_args=()
for ca in "${PIP_CERT:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$ca" ] && [ -f "$ca" ]; then ca_args=(--ca-cert "$ca"); break; fi
done

echo "== envlock replay $lock -> $image"
echo "   (the first run installs every hand-installed OS package of the lock from the mirror; on a"
echo "   workstation with ~100 of them that takes 15 minutes here; later runs come from the build cache)"
set +e
"$bin/envlock" replay "$lock" -t "$image" "${ca_args[@]}"
replay_rc=$?
set -e
if [ "$replay_rc" -ge 2 ]; then
  echo "envlock replay failed (exit $replay_rc)" >&2
  exit "$replay_rc"
fi

# The replay report above is the verdict screen: one line per layer, then only
# what differs.  The same verification as Markdown (for an issue or a paper's
# appendix) goes to a file instead of a second report on the screen.
report=${ENVLOCK_DEMO_REPORT:-envlock-replay.md}
set +e
"$bin/envlock" verify "$image" --markdown >"$report"
verify_rc=$?
set -e
if [ "$verify_rc" -ge 2 ]; then
  echo "envlock verify failed (exit $verify_rc)" >&2
  exit "$verify_rc"
fi
echo
if [ "$replay_rc" -eq 0 ]; then
  echo "== demo: $image reproduces $lock exactly (Markdown report: $report)"
else
  echo "== demo: $image built and verified; what differs is listed above (Markdown report: $report)"
fi
