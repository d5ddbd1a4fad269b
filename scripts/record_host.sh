#!/usr/bin/env bash
# Record the files envlock's OS, CPU and NVIDIA probes read, so tests can run
# against this host later without it (tests/data/hosts/<name>/).
#
#   bash scripts/record_host.sh [PARENT_DIR] [NAME]
#
# PARENT_DIR defaults to tests/data/hosts; NAME to
# linux-<os id><version>-<arch>-<cpu microarchitecture>.  Files keep their
# absolute paths under the folder (etc/os-release, proc/cpuinfo, ...) so every
# read_*(root) function can be pointed at it; command outputs go to commands/.
#
# Scrubbed before anything is written: this host's name (whole words, names
# of 3+ characters, as envlock.capture.privacy does), GPU and MIG UUIDs and
# GPU/board serial numbers.  Nothing else is changed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
parent=${1:-$here/tests/data/hosts}
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3

. /etc/os-release 2>/dev/null || . /usr/lib/os-release
arch=$(uname -m)
micro=$(PYTHONPATH=$here "$python" -c 'from envlock.capture.cpu import collect_cpu; import os; s = collect_cpu(warn=lambda m: None, architecture=os.uname().machine); print(s.microarchitecture if s and s.microarchitecture else "unknown")' 2>/dev/null || echo unknown)
name=${2:-linux-${ID:-unknown}${VERSION_ID:-}-$arch-$micro}
out=$parent/$name
if [ -e "$out" ]; then
    echo "record_host: $out exists; remove it or pass another NAME" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

host=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
scrub() {
    # stdin -> stdout
    local sed_args=(-E
        -e 's/GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}/GPU-00000000-0000-0000-0000-000000000000/g'
        -e 's/MIG-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}/MIG-00000000-0000-0000-0000-000000000000/g'
        -e 's/^([[:space:]]*Serial Number[[:space:]]*:).*/\1 <scrubbed>/'
        -e 's/^([[:space:]]*Board Serial[^:]*:).*/\1 <scrubbed>/')
    if [ ${#host} -ge 3 ] && [ "$host" != localhost ]; then
        local escaped
        escaped=$(printf '%s' "$host" | sed -e 's/[][\.*^$/]/\\&/g')
        sed_args+=(-e "s/\\b${escaped}\\b/<host>/g")
        local short=${host%%.*}
        if [ "$short" != "$host" ] && [ ${#short} -ge 3 ]; then
            escaped=$(printf '%s' "$short" | sed -e 's/[][\.*^$/]/\\&/g')
            sed_args+=(-e "s/\\b${escaped}\\b/<host>/g")
        fi
    fi
    sed "${sed_args[@]}"
}

copy() {  # copy FILE into the recording, keeping its path, when readable
    local src=$1
    [ -r "$src" ] || return 0
    mkdir -p "$tmp$(dirname "$src")"
    scrub <"$src" >"$tmp$src"
}

command_output() {  # command_output NAME CMD... : stdout of CMD into commands/NAME when it succeeds
    local name=$1
    shift
    command -v "$1" >/dev/null 2>&1 || return 0
    mkdir -p "$tmp/commands"
    if "$@" 2>/dev/null | scrub >"$tmp/commands/$name.partial"; then
        mv "$tmp/commands/$name.partial" "$tmp/commands/$name"
    else
        rm -f "$tmp/commands/$name.partial"
    fi
}

if [ -r /etc/os-release ]; then copy /etc/os-release; else copy /usr/lib/os-release; fi
copy /proc/cpuinfo
copy /proc/version
for node in /sys/devices/system/node/node[0-9]*; do
    [ -d "$node" ] && copy "$node/cpulist"
done
copy /var/lib/dpkg/status
copy /var/lib/apt/extended_states
copy /lib/apk/db/installed
copy /etc/apk/world
copy /proc/driver/nvidia/version
copy /sys/module/nvidia/version

mkdir -p "$tmp/commands"
uname -m >"$tmp/commands/uname-m.txt"
uname -r >"$tmp/commands/uname-r.txt"
command_output lscpu-J.json lscpu -J
command_output getconf-GNU_LIBC_VERSION.txt getconf GNU_LIBC_VERSION
if [ -r /var/lib/dpkg/status ]; then
    command_output dpkg-query-W.txt dpkg-query -W -f '${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n'
    command_output apt-mark-showauto.txt apt-mark showauto
fi
if command -v rpm >/dev/null && { [ -d /var/lib/rpm ] || [ -d /usr/lib/sysimage/rpm ]; }; then
    command_output rpm-qa.txt rpm -qa --qf '%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n'
fi
if command -v nvidia-smi >/dev/null; then
    command_output nvidia-smi.txt nvidia-smi
    command_output nvidia-smi-q.txt nvidia-smi -q
    command_output nvidia-smi-query-gpu.csv nvidia-smi --format=csv \
        --query-gpu=index,name,compute_cap,memory.total,mig.mode.current,ecc.mode.current,compute_mode,persistence_mode,power.limit,clocks.max.sm,clocks.max.memory,pci.device_id,driver_version
fi

cat >"$tmp/README.md" <<EOF
# $name

Recorded by \`scripts/record_host.sh\` on $(date -u +%Y-%m-%d) from a real host.
Files keep their absolute paths; \`commands/\` holds command outputs.
Scrubbed: the host name, GPU/MIG UUIDs and serial numbers (nothing else was edited).
EOF

mkdir -p "$parent"
mv "$tmp" "$out"
trap - EXIT
chmod -R u+rwX,go+rX "$out"
echo "recorded $out"
