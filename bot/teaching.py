"""The faces of a picture a moderator teaches with: only faces a detector found, never the
stand-in box used when none did. No model is needed, so a new server can teach first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.vision.crop import CropSettings, context_crop
from bot.vision.decode import DEFAULT_LIMITS, DecodeLimits, decode_image
from bot.vision.draw import NEUTRAL, numbered_faces
from bot.vision.faces import default_face_finder
from bot.vision.recognizer import UNDETECTED


@dataclass(frozen=True)
class TeachableFaces:
    """The stored crop of each face a detector found (main subject first), and the picture
    with them numbered when there are several (to ask which one is meant)."""

    crops: tuple[bytes, ...]
    numbered_jpeg: bytes | None


def teachable_faces(
    data: bytes, cascade_path: Path | None, limits: DecodeLimits | None = None
) -> TeachableFaces:
    """Find the faces of picture ``data`` (slow: call it off the event loop)."""
    decoded = decode_image(data, limits or DEFAULT_LIMITS)
    found = [
        face
        for face in default_face_finder(cascade_path).find(decoded.pixels)
        if face.detector not in UNDETECTED
    ]
    lift = CropSettings().lift
    crops = tuple(context_crop(decoded.pixels, face.box, lift) for face in found)
    numbered = None
    if len(found) > 1:
        numbered = numbered_faces(
            decoded.pixels, [face.box for face in found], [NEUTRAL] * len(found)
        )
    return TeachableFaces(crops, numbered)
