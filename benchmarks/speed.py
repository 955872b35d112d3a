"""Issue 9's speed and memory figures, bot side: one-face and group pictures through the
bot's recognizer (decode, detect, crop, embed, head) in a fresh process that imports
``bot.vision`` only, one LiteRT and one OpenCV thread, as each of the bot's workers runs.

    python benchmarks/speed.py --model BUNDLE [--passes 3] [--json-out FILE]

Pictures: the 89 seed pictures (the one-face figure takes those in which one face was
found) and the 60 pictures of ``quint_groups`` (the group figure takes those with 4 or 5
faces found). Any bundle with the default backbone will do: a head's size barely changes
the time. Timings move with the load average, which is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/speed.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

from benchmarks.report import (  # noqa: E402
    load_average,
    machine_info,
    print_machine,
    render_table,
    section,
)
from tests.shared_data import DEV_SETS, SEED_TRAIN  # noqa: E402

ONE_FACE_TARGET_MS = 40.0
GROUP_TARGET_MS = 100.0
MAX_TARGET_MS = 300.0
RSS_TARGET_MB = 400.0


def run_worker(data: Path, model: Path, cascade: Path, passes: int) -> dict[str, Any]:
    """``benchmarks/engine.py``'s bot-side worker over ``data/*/*`` in a fresh process."""
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "engine.py"),
        "--bot-worker",
        "--data",
        str(data),
        "--model",
        str(model),
        "--cascade",
        str(cascade),
        "--passes",
        str(passes),
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit(f"the bot-side worker failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def pictures_with(result: dict[str, Any], faces: set[int]) -> list[str]:
    """The pictures of a worker's result in which the number of faces found is in ``faces``."""
    return [name for name, n in result["faces_per_picture"].items() if n in faces]


def summary(result: dict[str, Any], names: list[str]) -> tuple[float, float, float]:
    """Median, 90th percentile (of the per-picture medians) and maximum (of every pass)."""
    medians = sorted(result["per_picture_median_ms"][n] for n in names)
    worst = max(result["per_picture_max_ms"][n] for n in names)
    p90 = medians[min(len(medians) - 1, int(0.9 * len(medians)))]
    return statistics.median(medians), p90, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a bundle directory")
    parser.add_argument("--cascade", type=Path, default=None, help="an LBP cascade file")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the pictures")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not SEED_TRAIN.is_dir() or not (DEV_SETS / "quint_groups").is_dir():
        print(f"skipped: the seed or quint_groups pictures are absent ({SEED_TRAIN.parent})")
        return 0
    from bot.vision.cascade import resolve_cascade

    cascade = resolve_cascade(args.cascade).resolve()
    info = machine_info()
    print_machine(info)
    start_load = load_average()
    section(f"seed pictures, {args.passes} passes")
    seed = run_worker(SEED_TRAIN, args.model, cascade, args.passes)
    section(f"quint_groups pictures, {args.passes} passes")
    groups = run_worker(DEV_SETS / "quint_groups", args.model, cascade, args.passes)
    one = pictures_with(seed, {1}) + pictures_with(groups, {1})
    several = pictures_with(groups, {4, 5})
    both = {
        key: {**seed[key], **groups[key]} for key in ("per_picture_median_ms", "per_picture_max_ms")
    }
    one_median, one_p90, one_max = summary(both, one)
    group_median, group_p90, group_max = summary(groups, several)
    worst = max(seed["max_ms"], groups["max_ms"])
    rss = max(seed["vm_hwm_mb"], groups["vm_hwm_mb"])
    rows = [
        (
            f"one-face pictures ({len(one)}): median / p90 / max",
            f"{one_median:.1f} / {one_p90:.1f} / {one_max:.0f} ms",
            f"median ≤ {ONE_FACE_TARGET_MS:.0f} ms",
            "PASS" if one_median <= ONE_FACE_TARGET_MS else "FAIL",
        ),
        (
            f"group pictures with 4–5 faces ({len(several)}): median / p90 / max",
            f"{group_median:.1f} / {group_p90:.1f} / {group_max:.0f} ms",
            f"median ≤ {GROUP_TARGET_MS:.0f} ms",
            "PASS" if group_median <= GROUP_TARGET_MS else "FAIL",
        ),
        (
            "slowest picture of all",
            f"{worst:.0f} ms",
            f"≤ {MAX_TARGET_MS:.0f} ms",
            "PASS" if worst <= MAX_TARGET_MS else "FAIL",
        ),
        (
            "bot-side peak memory (VmHWM)",
            f"{rss:.0f} MB",
            f"≤ {RSS_TARGET_MB:.0f} MB",
            "PASS" if rss <= RSS_TARGET_MB else "FAIL",
        ),
        (
            "stage medians, seed: decode / detect / classify per face",
            f"{seed['decode_median_ms']:.1f} / {seed['detect_median_ms']:.1f} / "
            f"{seed['classify_per_face_median_ms']:.1f} ms",
            "",
            "",
        ),
    ]
    print()
    print(render_table(rows))
    print(f"\nload average at start {start_load}, at end {load_average()}")
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps({"machine": info, "seed": seed, "groups": groups, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
