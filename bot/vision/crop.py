"""Face crops with a margin: hair and face together carry a character's identity."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from bot.vision.geometry import Box


@dataclass(frozen=True)
class CropSettings:
    """How a face box becomes the square picture the classifier sees.

    Each of ``margins`` gives one view of the face: the crop side as a multiple of the face
    box's longer side (1.0 shows eyes and face, 1.5 adds hair and accessories). ``lift``
    moves the crops up by that share of the box height, since anime hair sits above the box.
    """

    margins: tuple[float, ...] = (1.0, 1.5)
    lift: float = 0.1
    size: int = 224

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``model.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CropSettings:
        """Read back what ``to_dict`` wrote (unknown keys are an error)."""
        margins = tuple(float(m) for m in values["margins"])
        if not margins or any(m <= 0 for m in margins):
            raise ValueError(f"crop margins must be positive numbers, not {values['margins']!r}")
        return cls(margins=margins, lift=float(values["lift"]), size=int(values["size"]))


def crop_region(box: Box, margin: float, lift: float) -> Box:
    """The square region around ``box`` to crop; it may reach outside the picture."""
    side = max(1, round(max(box.w, box.h) * margin))
    cx, cy = box.center
    cy -= lift * box.h
    return Box(round(cx - side / 2), round(cy - side / 2), side, side)


def crop_views(image: np.ndarray, box: Box, settings: CropSettings) -> np.ndarray:
    """Every view of one face: ``V×size×size×3`` uint8, one per margin, in settings order."""
    return np.stack(
        [crop_face(image, box, m, settings.lift, settings.size) for m in settings.margins]
    )


def crop_face(image: np.ndarray, box: Box, margin: float, lift: float, size: int) -> np.ndarray:
    """The ``size``×``size`` RGB crop around ``box``; parts outside the picture repeat its edge."""
    height, width = image.shape[:2]
    region = crop_region(box, margin, lift)
    x0, y0, x1, y1 = region.x, region.y, region.x + region.w, region.y + region.h
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        inside = image[y0:y1, x0:x1]  # the usual case: a view, no copy
    else:
        # Edge-clamped indexing: parts outside the picture repeat its nearest edge, and
        # memory stays bounded by the region's size wherever it lies.
        ys = np.clip(np.arange(y0, y1), 0, height - 1)
        xs = np.clip(np.arange(x0, x1), 0, width - 1)
        inside = image.take(ys, axis=0).take(xs, axis=1)
    interpolation = cv2.INTER_AREA if inside.shape[0] > size else cv2.INTER_LINEAR
    crop = cv2.resize(inside, (size, size), interpolation=interpolation)
    return np.ascontiguousarray(crop, dtype=np.uint8)
