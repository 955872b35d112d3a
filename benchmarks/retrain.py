"""Issue 9's retrain figure: a head refit on a fine-tuned backbone after 5 new pictures.

    python benchmarks/retrain.py --bundle BUNDLE --data DIR [--new 5]

``BUNDLE`` is a bundle trained (fine-tuned) on ``DIR``'s pictures, e.g. one that
``benchmarks/recognition.py --work W`` left in ``W/bundles/quint15`` with its training folder
``W/data/quint15``. The script links ``DIR`` into a temporary folder without the last
picture of ``--new`` characters, runs ``python -m trainer train --backbone-from BUNDLE``
once to fill the embedding cache, puts the held-back pictures in and times the second run:
what an operator's retrain after a few new pictures costs (detection and embedding of the
new pictures, the head, the hold-out calibration, writing the bundle).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/retrain.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

from benchmarks.report import (  # noqa: E402
    load_average,
    machine_info,
    print_machine,
    run_trainer,
)

TARGET_SECONDS = 15.0


def refit(data: Path, bundle: Path, out: Path, cache: Path) -> tuple[float, dict[str, object]]:
    """One ``--backbone-from`` run; its wall time and model.json."""
    seconds, stdout = run_trainer(
        [
            *("--data", str(data), "--out", str(out), "--backbone-from", str(bundle)),
            *("--cache", str(cache), "--quiet", "--json"),
        ]
    )
    info: dict[str, object] = json.loads(stdout)
    return seconds, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a fine-tuned bundle")
    parser.add_argument("--data", type=Path, required=True, help="the pictures it was trained on")
    parser.add_argument("--new", type=int, default=5, help="pictures held back, then added")
    args = parser.parse_args(argv)
    print_machine(machine_info())
    start_load = load_average()
    folders = sorted(p for p in args.data.iterdir() if p.is_dir())
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        root = Path(tmp)
        data = root / "data"
        held: list[tuple[Path, Path]] = []
        for number, folder in enumerate(folders):
            files = sorted(p for p in folder.iterdir() if p.is_file())
            (data / folder.name).mkdir(parents=True)
            for index, path in enumerate(files):
                link = data / folder.name / path.name
                if number < args.new and index == len(files) - 1:
                    held.append((path.resolve(), link))
                else:
                    link.symlink_to(path.resolve())
        first, _ = refit(data, args.bundle, root / "first", root / "cache")
        for target, link in held:
            link.symlink_to(target)
        second, info = refit(data, args.bundle, root / "second", root / "cache")
    training = info["training"]
    assert isinstance(training, dict)
    verdict = "PASS" if second <= TARGET_SECONDS else "FAIL"
    print(
        f"\nrefit on {training['pictures']} pictures, {len(held)} of them new: {second:.1f} s "
        f"(target ≤ {TARGET_SECONDS:.0f} s) {verdict}; the first run, embedding every picture "
        f"with the bundle's backbone, took {first:.1f} s"
    )
    print(f"load average at start {start_load}, at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
