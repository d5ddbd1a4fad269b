#!/usr/bin/env bash
# Record one real GPU host as test data, in one short run (made for the device
# machine that some sessions are lent: `run` with this script, timeout ~300 s).
#
#   bash scripts/record_gpu_host.sh OUT_DIR
#
# Writes OUT_DIR/<host name>/ with:
#   - everything scripts/record_host.sh records (os-release, cpuinfo, dpkg,
#     /proc/driver/nvidia/version, nvidia-smi table, -q and CSV query);
#   - nvml-values.json: what the real nvidia-ml-py binding answers, field by
#     field (the same calls envlock's NVML probe makes), for the fake-NVML tests;
#   - envlock.lock: a full `envlock capture` of this host (private fields off);
#   - doctor-*.txt / .json: `envlock doctor` of this host against the committed
#     reference locks in tests/data/lockfiles/ (whatever is there).
# Nothing here needs the network; envlock runs from this checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: record_gpu_host.sh OUT_DIR}
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
# The device machine starts bare: install only what capture needs, quietly.
"$python" -c "import packaging, pynvml, tomli_w" 2>/dev/null \
  || "$python" -m pip install -q packaging tomli tomli-w nvidia-ml-py >/dev/null 2>&1 || true

PYTHON=$python bash "$here/scripts/record_host.sh" "$out"
dest=$(ls -dt "$out"/*/ | head -1)

"$python" - "$dest/nvml-values.json" <<'PY'
import json, sys
out = {"calls": {}}
try:
    import pynvml as n
    n.nvmlInit()
except Exception as exc:  # recorded as data: the fake must reproduce it
    out["init_error"] = repr(exc)
else:
    def field(name, fn, *args):
        try:
            value = fn(*args)
            if isinstance(value, bytes):
                value = value.decode()
            if hasattr(value, "_fields_"):
                value = {k: getattr(value, k) for k, _ in value._fields_}
            out["calls"][name] = value
        except Exception as exc:
            out["calls"][name] = {"error": type(exc).__name__}
    field("driver_version", n.nvmlSystemGetDriverVersion)
    field("cuda_driver_version", n.nvmlSystemGetCudaDriverVersion_v2)
    field("nvml_version", n.nvmlSystemGetNVMLVersion)
    count = n.nvmlDeviceGetCount()
    out["count"] = count
    for i in range(count):
        h = n.nvmlDeviceGetHandleByIndex(i)
        p = f"gpu{i}."
        field(p + "name", n.nvmlDeviceGetName, h)
        field(p + "cuda_compute_capability", n.nvmlDeviceGetCudaComputeCapability, h)
        field(p + "memory_info", n.nvmlDeviceGetMemoryInfo, h)
        field(p + "mig_mode", n.nvmlDeviceGetMigMode, h)
        field(p + "ecc_mode", n.nvmlDeviceGetEccMode, h)
        field(p + "compute_mode", n.nvmlDeviceGetComputeMode, h)
        field(p + "persistence_mode", n.nvmlDeviceGetPersistenceMode, h)
        field(p + "power_limit", n.nvmlDeviceGetPowerManagementLimit, h)
        field(p + "max_sm_clock", n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM)
        field(p + "max_mem_clock", n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_MEM)
        field(p + "pci_info", lambda h: {"pciDeviceId": n.nvmlDeviceGetPciInfo(h).pciDeviceId}, h)
        field(p + "multiprocessors", n.nvmlDeviceGetNumGpuCores, h)
    n.nvmlShutdown()
json.dump(out, open(sys.argv[1], "w"), indent=2, sort_keys=True, default=str)
PY

"$python" -m envlock capture -q -o "$dest/envlock.lock" || echo "capture failed: $?" >"$dest/capture-failed.txt"
for lock in "$here"/tests/data/lockfiles/*.lock; do
  [ -e "$lock" ] || continue
  base=$(basename "$lock" .lock)
  "$python" -m envlock doctor "$lock" >"$dest/doctor-$base.txt" 2>&1 || true
  "$python" -m envlock doctor --json "$lock" >"$dest/doctor-$base.json" 2>/dev/null || true
done
echo "recorded GPU host in $dest"
