"""The NVIDIA kernel module's own version files: the fallback when NVML is missing.

A host can have the kernel driver loaded but no ``libnvidia-ml.so.1`` (a
container started without the NVIDIA runtime's library mounts, a minimal
install).  The module still reports its version in two places:

* ``/proc/driver/nvidia/version``, first line, in two layouts::

    NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.161.07  Sat Feb 17 22:55:48 UTC 2024
    NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.172.08  Release Build  (dvs-builder@...)  ...

  (recordings in ``tests/data/hosts/*/proc_driver_nvidia_version``); versions
  have two or three parts (``570.169`` is real);
* ``/sys/module/nvidia/version``: the version alone on one line.

``read_*`` take the filesystem root so tests can point them at a recorded
host; ``parse_*`` are pure.
"""

from __future__ import annotations

import os
import re

from envlock.lockfile.fields import compiled_on_first_use

PROC_VERSION = "proc/driver/nvidia/version"
SYS_MODULE_VERSION = "sys/module/nvidia/version"

# The files are a few hundred bytes; a cap keeps a strange mount from costing time.
_MAX_BYTES = 64 * 1024

# Compiled on first use: most hosts have neither file.
_nvrm_line = compiled_on_first_use(
    r"^NVRM version:.*?Kernel Module(?:\s+for\s+\S+)?\s+(?P<version>[0-9]+(?:\.[0-9]+){1,3})(?:\s|$)",
    re.MULTILINE,
)
_module_version = compiled_on_first_use(r"[0-9]+(?:\.[0-9]+){1,3}")


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def read_proc_driver_version(root: str | os.PathLike = "/") -> str | None:
    """The text of ``/proc/driver/nvidia/version`` below ``root``, or ``None``."""
    return _read_text(os.path.join(root, PROC_VERSION))


def read_sys_module_version(root: str | os.PathLike = "/") -> str | None:
    """The text of ``/sys/module/nvidia/version`` below ``root``, or ``None``."""
    return _read_text(os.path.join(root, SYS_MODULE_VERSION))


def parse_proc_driver_version(text: str) -> str | None:
    """The driver version from the ``NVRM version:`` line, proprietary or open module."""
    match = _nvrm_line().search(text)
    return match.group("version") if match else None


def parse_sys_module_version(text: str) -> str | None:
    """The version from ``/sys/module/nvidia/version`` (one line, nothing else)."""
    value = text.strip()
    return value if _module_version().fullmatch(value) else None
