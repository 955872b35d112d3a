"""Drawing on pictures: numbered boxes around faces, for answers and questions about several."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from bot.vision.decode import encode_jpeg
from bot.vision.geometry import Box

Colour = tuple[int, int, int]

ANNOTATED_SIDE = 1024
"""The longest side of a numbered picture (larger pictures are shrunk first)."""
SURE: Colour = (40, 220, 90)
UNSURE: Colour = (255, 170, 0)
NEUTRAL: Colour = (80, 170, 255)
"""For faces nothing was said about yet (``/teach`` asking which face is meant)."""
TEXT: Colour = (0, 0, 0)


def numbered_faces(
    pixels: np.ndarray, boxes: Sequence[Box], colours: Sequence[Colour], scale: float = 1.0
) -> bytes:
    """A JPEG of ``pixels`` with box ``n`` (its coordinates times ``scale``) numbered ``n``
    from 1, each in its colour."""
    image, factor = pixels, 1.0
    longest = max(pixels.shape[:2])
    if longest > ANNOTATED_SIDE:
        factor = ANNOTATED_SIDE / longest
        image = cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    else:
        image = pixels.copy()
    thickness = max(2, round(max(image.shape[:2]) / 300))
    for number, (face_box, colour) in enumerate(zip(boxes, colours, strict=True), start=1):
        box = face_box.scaled(scale * factor)
        cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), colour, thickness)
        label = str(number)
        size = max(0.6, box.w / 150)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
        y = max(th + 4, box.y)
        cv2.rectangle(image, (box.x, y - th - 6), (box.x + tw + 6, y), colour, -1)
        cv2.putText(
            image, label, (box.x + 3, y - 4), cv2.FONT_HERSHEY_SIMPLEX, size, TEXT, thickness
        )
    return encode_jpeg(image)
