"""The machine a latency figure was measured on: CPU model and cores, GPU, onnxruntime and Python versions,
load average. Reports carry it so that a figure is never read without its context."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model() -> tuple[str, int | None]:
    """CPU model name and physical core count from /proc/cpuinfo (Linux); platform fallbacks elsewhere."""
    name, cores = platform.processor() or platform.machine(), set()
    try:
        physical = core = None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                name = value
            elif key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not key and core is not None:
                cores.add((physical, core))
                physical = core = None
        if core is not None:
            cores.add((physical, core))
    except OSError:
        pass
    return name, (len(cores) or None)


def _gpu_name() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def machine_info(on_cuda: bool = False) -> dict[str, Any]:
    import onnxruntime as ort

    cpu, physical = _cpu_model()
    info: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if on_cuda:
        info["gpu"] = _gpu_name()
    return info
