"""The model directory: bundles side by side and a ``CURRENT`` pointer every process follows.

``MODEL_DIR/bundles/<version>/`` holds each bundle; ``MODEL_DIR/CURRENT`` names the serving
one. Promoting or rolling back rewrites the pointer atomically, and every bot process that
shares the directory picks the change up by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot.errors import BundleError
from bot.vision.bundle import ModelBundle, load_bundle
from bot.vision.classifier import FaceClassifier

log = logging.getLogger(__name__)

POINTER = "CURRENT"

Verify = Callable[[ModelBundle], None]


def check_runnable(bundle: ModelBundle) -> None:
    """Raise ``BundleError`` unless LiteRT loads the bundle's model with the shapes its
    ``model.json`` and ``labels.txt`` describe (``load_bundle`` only checks the files)."""
    FaceClassifier(bundle)


class ModelStore:
    """Reads and moves the ``CURRENT`` pointer of a model directory.

    ``verify`` (the bot passes :func:`check_runnable`) runs on a bundle before it is
    promoted, so the pointer never names a bundle the runtime would refuse.
    """

    def __init__(self, root: Path, *, verify: Verify | None = None) -> None:
        self.root = root
        self.bundles = root / "bundles"
        self.verify = verify

    def current_version(self) -> str | None:
        """The version named by ``CURRENT``, or None when no model was promoted yet."""
        try:
            name = (self.root / POINTER).read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def bundle_path(self, version: str) -> Path:
        """Where bundle ``version`` lives."""
        if not version or "/" in version or version.startswith("."):
            raise BundleError(f"not a model version: {version!r}")
        return self.bundles / version

    def load(self, version: str) -> ModelBundle:
        """Load and check bundle ``version``."""
        return load_bundle(self.bundle_path(version))

    def load_current(self) -> ModelBundle | None:
        """The serving bundle, or None when there is none yet."""
        version = self.current_version()
        return None if version is None else self.load(version)

    def promote(self, version: str) -> ModelBundle:
        """Make ``version`` the serving bundle (checked first; the pointer moves atomically)."""
        bundle = self.load(version)
        if self.verify is not None:
            self.verify(bundle)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".current.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(version + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / POINTER)
        except BaseException:
            # A full disk, say: the old pointer stays, and no temporary file is left behind.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        log.info("model %s is now serving", version)
        return bundle

    def versions(self) -> list[str]:
        """Every complete bundle on disk, oldest first (versions start with a timestamp)."""
        if not self.bundles.is_dir():
            return []
        return sorted(
            p.name
            for p in self.bundles.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "model.json").is_file()
        )
