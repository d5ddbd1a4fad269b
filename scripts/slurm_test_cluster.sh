#!/usr/bin/env bash
# A real Slurm cluster on this one machine, for the fleet tests and benchmarks:
# Debian's slurm-wlm and munge, one slurmctld and N slurmd daemons, every one
# on 127.0.0.1 with its own port, spool directory and log.
#
# Why several slurmd on loopback rather than nodes in containers: containers
# would sit on a bridge network (addresses outside 127.0.0.0/8, which the tests
# must never reach) and would each need envlock and its Python installed;
# Slurm runs several slurmd on one host when each node has its own NodeName,
# Port and spool, and `srun` then behaves as on a real cluster (allocation,
# per-node task launch, SLURMD_NODENAME, per-node errors).  Nodes differ the way
# real ones do through a TaskProlog that exports DIR/node-env/<node>.env into
# the task's environment (a fake libnvidia-ml.so.1 with another driver,
# another OMP_NUM_THREADS), which the tests write.
#
# Usage:
#   scripts/slurm_test_cluster.sh start DIR [NODES]   # default 3 nodes: node1..nodeN
#   scripts/slurm_test_cluster.sh stop DIR            # stops only the daemons it started
#   scripts/slurm_test_cluster.sh stop-node DIR NODE  # one slurmd down (a failing node)
#   scripts/slurm_test_cluster.sh start-node DIR NODE # back up, and resumed in Slurm
#   scripts/slurm_test_cluster.sh env DIR             # prints: export SLURM_CONF=...
# Needs root (slurmd runs tasks as their user) and the packages slurm-wlm, munge.
set -euo pipefail

cmd=${1:?usage: $0 start|stop|stop-node|start-node|env DIR [ARG]}
dir=${2:?usage: $0 $cmd DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/etc/slurm.conf
export SLURM_CONF=$conf
# Ports chosen away from Slurm's defaults (6817/6818) so a real cluster on the
# same machine is never touched.
ctld_port=${ENVLOCK_SLURM_CTLD_PORT:-16817}
node_port_base=${ENVLOCK_SLURM_NODE_PORT_BASE:-17000}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0
  fi
  [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force >/dev/null
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  /usr/sbin/munged --force
  cp /run/munge/munged.pid "$dir/munged.pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "slurm_test_cluster: munged did not start" >&2
  return 1
}

write_config() {
  local nodes=$1
  mkdir -p "$dir/etc" "$dir/state" "$dir/log" "$dir/spool" "$dir/node-env"
  cat >"$dir/etc/task_prolog.sh" <<EOF
#!/bin/sh
# Slurm reads 'export NAME=value' lines printed by a TaskProlog into the task's environment.
env_file="$dir/node-env/\${SLURMD_NODENAME}.env"
[ -f "\$env_file" ] && cat "\$env_file"
exit 0
EOF
  chmod 755 "$dir/etc/task_prolog.sh"
  {
    echo "# Written by scripts/slurm_test_cluster.sh: a test cluster on 127.0.0.1 only."
    echo "ClusterName=envlocktest"
    echo "SlurmctldHost=localhost(127.0.0.1)"
    echo "SlurmctldPort=$ctld_port"
    echo "SlurmdPort=$((node_port_base))"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool/%n"
    echo "SlurmctldPidFile=$dir/slurmctld.pid"
    echo "SlurmdPidFile=$dir/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/log/slurmctld.log"
    echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "TaskProlog=$dir/etc/task_prolog.sh"
    echo "MpiDefault=none"
    echo "SchedulerType=sched/backfill"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    # A node whose slurmd comes back is usable again without an operator.
    echo "ReturnToService=2"
    echo "SlurmctldTimeout=30"
    echo "SlurmdTimeout=30"
    echo "MessageTimeout=5"
    for i in $(seq 1 "$nodes"); do
      echo "NodeName=node$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((node_port_base + i)) CPUs=1 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP"
  } >"$conf"
  echo "$nodes" >"$dir/nodes"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_node() {
  local node=$1
  pid_alive "$dir/slurmd-$node.pid" && return 0
  slurmd -f "$conf" -N "$node"
  for _ in $(seq 1 50); do
    pid_alive "$dir/slurmd-$node.pid" && return 0
    sleep 0.1
  done
  echo "slurm_test_cluster: slurmd for $node did not start; see $dir/log/slurmd-$node.log" >&2
  return 1
}

wait_idle() {
  local want=$1
  for _ in $(seq 1 100); do
    local idle
    idle=$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)
    [ "$idle" -ge "$want" ] && return 0
    sleep 0.2
  done
  echo "slurm_test_cluster: nodes did not become idle:" >&2
  sinfo -N >&2 || true
  return 1
}

case "$cmd" in
  start)
    nodes=${3:-3}
    command -v slurmctld >/dev/null || { echo "slurm_test_cluster: slurm-wlm is not installed" >&2; exit 1; }
    start_munge
    if ! pid_alive "$dir/slurmctld.pid"; then
      write_config "$nodes"
      # -i: ignore state files from an earlier run; -c would clear jobs too.
      slurmctld -f "$conf" -i
    fi
    for i in $(seq 1 "$(cat "$dir/nodes")"); do start_node "node$i"; done
    wait_idle "$(cat "$dir/nodes")"
    echo "slurm test cluster up: $(cat "$dir/nodes") nodes, SLURM_CONF=$conf"
    ;;
  stop)
    for pidfile in "$dir"/slurmd-*.pid "$dir/slurmctld.pid"; do
      [ -f "$pidfile" ] || continue
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    done
    # munged only when this script started it (a machine's own munged stays).
    if [ -f "$dir/munged.pid" ]; then
      kill "$(cat "$dir/munged.pid")" 2>/dev/null || true
      rm -f "$dir/munged.pid"
    fi
    ;;
  stop-node)
    node=${3:?usage: $0 stop-node DIR NODE}
    pidfile=$dir/slurmd-$node.pid
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidfile"
    fi
    ;;
  start-node)
    node=${3:?usage: $0 start-node DIR NODE}
    start_node "$node"
    scontrol update nodename="$node" state=resume 2>/dev/null || true
    wait_idle "$(cat "$dir/nodes")"
    ;;
  env)
    echo "export SLURM_CONF=$conf"
    ;;
  *)
    echo "usage: $0 start|stop|stop-node|start-node|env DIR [ARG]" >&2
    exit 2
    ;;
esac
