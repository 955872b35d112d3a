"""What every benchmark prints about where it ran: the machine, the package versions and the
load average (timings on this shared two-core machine mean little without them)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def section(title: str) -> None:
    """Print a step's heading with the load average as the step starts."""
    load = ", ".join(f"{x:.2f}" for x in load_average())
    print(f"\n== {title} (load average {load}) ==", flush=True)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, the versions of the packages that time
    recognition, and the load average now."""
    from bot.service import usable_cores

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = usable_cores()
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    packages = (
        "numpy",
        "tensorflow",
        "keras",
        "ai-edge-litert",
        "opencv-python-headless",
        "pillow",
        "animeface",
        "scikit-learn",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in packages},
        "load_average_at_start": load_average(),
    }


def print_machine(info: dict[str, Any]) -> None:
    """Print :func:`machine_info`'s answer in a few lines."""
    print(f"CPU: {info['cpu']}; {info['cores']} cores ({info['usable_cores']} usable)", end="")
    print(f"; {info['memory_gb']} GB RAM" if info["memory_gb"] else "")
    print(f"OS: {info['os']}; Python {info['python']}")
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    print(
        "load average at start (1, 5, 15 min): "
        + ", ".join(map(str, info["load_average_at_start"]))
    )


def render_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of (figure, measured, target, result) as an aligned plain-text table, headed."""
    lines = [("figure", "measured", "target", "result"), *(tuple(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run_trainer(args: Sequence[str], extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    """``python -m trainer train ARGS`` in a subprocess from the repository: its wall time
    and standard output; on failure prints the end of its output and exits."""
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "trainer", "train", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        print(proc.stderr[-3000:])
        raise SystemExit(f"the trainer failed with exit code {proc.returncode}: {command}")
    return seconds, proc.stdout
