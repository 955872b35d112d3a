"""Integer boxes and the arithmetic on them (scaling, clipping, overlap)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in pixels: top-left corner ``(x, y)``, width and height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Area in square pixels (0 for a degenerate box)."""
        return max(0, self.w) * max(0, self.h)

    @property
    def center(self) -> tuple[float, float]:
        """Centre point ``(cx, cy)``."""
        return self.x + self.w / 2, self.y + self.h / 2

    def scaled(self, factor: float) -> Box:
        """The same rectangle in a picture resized by ``factor`` (coordinates multiplied)."""
        x0, y0 = round(self.x * factor), round(self.y * factor)
        x1, y1 = round((self.x + self.w) * factor), round((self.y + self.h) * factor)
        return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))

    def clipped(self, width: int, height: int) -> Box:
        """This box cut to a ``width`` × ``height`` picture (at least 1×1 inside it)."""
        x0 = min(max(self.x, 0), width - 1)
        y0 = min(max(self.y, 0), height - 1)
        x1 = min(max(self.x + self.w, x0 + 1), width)
        y1 = min(max(self.y + self.h, y0 + 1), height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def intersection(self, other: Box) -> int:
        """Area shared with ``other``."""
        w = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        h = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(0, w) * max(0, h)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when either box is empty)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def overlap_of_smaller(self, other: Box) -> float:
        """Share of the smaller box covered by the other: 1.0 when one contains the other."""
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def as_list(self) -> list[int]:
        """``[x, y, w, h]`` as the JSON output writes it."""
        return [self.x, self.y, self.w, self.h]
