"""Training examples as the backbone sees them: a stored face crop back to its views.

An example keeps the wide crop the bot stored for its face (``context_crop``: the face box's
longer side times ``CONTEXT_MARGIN``, lifted, at ``CONTEXT_SIZE`` pixels), so where the face
sits in it is known: each view is cut from it around that box, with the backbone's crop
settings. A head can then be refitted on any backbone from the database alone.
"""

from __future__ import annotations

import numpy as np

from bot.vision.crop import CONTEXT_MARGIN, CONTEXT_SIZE, CropSettings, crop_views
from bot.vision.decode import decode_image
from bot.vision.embedder import FaceEmbedder
from bot.vision.geometry import Box

STORED_LIFT = CropSettings().lift
"""The lift the stored crops were made with (``/teach`` and answers use the default)."""


def face_in_context(lift: float = STORED_LIFT) -> Box:
    """Where a (square) face box lies in its stored context crop."""
    side = CONTEXT_SIZE / CONTEXT_MARGIN
    centre_y = CONTEXT_SIZE / 2 + lift * side
    return Box(
        round((CONTEXT_SIZE - side) / 2), round(centre_y - side / 2), round(side), round(side)
    )


def example_views(crop: bytes, settings: CropSettings) -> np.ndarray:
    """The views (``V×S×S×3`` uint8) of the face in a stored crop; raises ``ImageError``
    for bytes that are not a picture."""
    pixels = decode_image(crop).pixels
    # Crops are square; one stored at another size holds the face at the same place.
    box = face_in_context().scaled(pixels.shape[1] / CONTEXT_SIZE)
    return crop_views(pixels, box, settings)


def embed_both_ways(embedder: FaceEmbedder, views: np.ndarray) -> np.ndarray:
    """A face's training embedding ``2×D``: as seen, and mirrored left to right."""
    return np.stack([embedder.embed(views), embedder.embed(views[:, :, ::-1])])
