"""What this device is: architecture, CPU model and flags, OS, installed runtimes, and a stable fingerprint of them.

The fingerprint keys the tuning cache: a timing measured on one CPU (or with one runtime version) says nothing
about another, so anything that changes which backend is fastest is part of it, and nothing that changes from run
to run (load, frequency, hostname) is.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
ARM_ARCHES = ("aarch64", "arm64", "armv7l", "armv8l", "armv6l")


@dataclass(frozen=True)
class DeviceInfo:
    arch: str  # platform.machine(), lower-case: x86_64, aarch64, arm64, ...
    system: str  # Linux, Darwin, Windows
    os_release: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    cpu_count: int
    python: str
    backends: dict[str, str | None] = field(default_factory=dict)  # backend -> "dist version" or None

    @property
    def is_arm(self) -> bool:
        return self.arch in ARM_ARCHES or self.arch.startswith("arm")

    @property
    def fingerprint(self) -> str:
        """Stable id of (CPU, OS, runtimes): the same machine and install gives the same string across runs."""
        key = {
            "arch": self.arch,
            "system": self.system,
            "cpu_model": self.cpu_model,
            "cpu_flags": sorted(self.cpu_flags),
            "cpu_count": self.cpu_count,
            "python": self.python,
            "backends": {k: v for k, v in sorted(self.backends.items())},
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.arch}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_flags"] = list(self.cpu_flags)
        data["fingerprint"] = self.fingerprint
        return data


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """CPU model and feature flags from /proc/cpuinfo text (x86 'model name'/'flags', ARM 'Model'/'Features')."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    model = fields.get("model name") or fields.get("model") or fields.get("hardware") or fields.get("cpu model") or ""
    if not model and "cpu part" in fields:  # bare ARM kernels: implementer + part identify the core
        model = f"arm implementer {fields.get('cpu implementer', '?')} part {fields['cpu part']}"
    flags = fields.get("flags") or fields.get("features") or ""
    return model, tuple(sorted(set(flags.split())))


def _cpu_model_and_flags() -> tuple[str, tuple[str, ...]]:
    try:
        return parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:
        return platform.processor() or platform.machine(), ()


@lru_cache(maxsize=1)
def probe() -> DeviceInfo:
    """Describe this device. Cached: the answer cannot change within a process."""
    from .backends import BACKENDS, backend_version

    model, flags = _cpu_model_and_flags()
    return DeviceInfo(
        arch=platform.machine().lower(),
        system=platform.system(),
        os_release=platform.release(),
        cpu_model=model or platform.processor() or "unknown",
        cpu_flags=flags,
        cpu_count=os.cpu_count() or 1,
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        backends={b: backend_version(b) for b in BACKENDS},
    )
