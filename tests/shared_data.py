"""Where the shared development data is: ``../shared`` beside the repository.

Every test that reads it finds it here, and skips with the reason when it is absent. To
check a run without it (as a user's machine is), point ``ANIMEBOT_SHARED_DIR`` at an
empty folder.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(
    os.environ.get("ANIMEBOT_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared"
)
SEED_TRAIN = SHARED / "datasets" / "seed" / "train"
"""The 89 seed pictures, one folder per character."""
DEV_SETS = SHARED / "datasets" / "dev"
"""The development sets of other series."""
