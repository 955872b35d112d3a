"""Anime face detection: the LBP cascade (upright and tilted), animeface-2009, merged into one
list; the whole picture, named "none", when no face is found.

Detectors run on a downscaled copy (their cost grows with the pixel count) and
their boxes are mapped back to the coordinates of the picture they were given.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image

from bot.errors import BotError
from bot.vision.geometry import Box

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Face:
    """A face found in a picture: where it is, which detector found it, how sure it was (0–1)."""

    box: Box
    detector: str
    confidence: float


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB ``H×W×3`` uint8 picture."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image``, boxes in ``image`` coordinates, in no particular order."""
        ...


@runtime_checkable
class HintingDetector(FaceDetector, Protocol):
    """A detector that also says where it saw something too weak to call a face."""

    def detect_with_hints(self, image: np.ndarray) -> tuple[list[Face], list[Box]]:
        """Faces as ``detect`` finds them, and boxes of weaker hits (may include the faces)."""
        ...


def is_one_face_alone(faces: Sequence[Face], hints: Sequence[Box]) -> bool:
    """True when exactly one face was found and no hint lies away from it: a portrait, where
    looking for tilted faces would cost time for nothing."""
    if len(faces) != 1:
        return False
    return all(hint.overlap_of_smaller(faces[0].box) >= 0.3 for hint in hints)


class DetectorConfigError(BotError):
    """A detector cannot be set up (for instance the cascade file is missing or invalid)."""


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side``, and the factor used."""
    height, width = image.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor >= 1.0:
        return image, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def resize_to(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``image`` resized (up or down) so its longer side is ``side``, and the factor used.

    Small pictures are enlarged too: the cascade's smallest window is 24 px, and the faces of
    a ~190×270 group picture are smaller than that unless the picture is scaled up.
    """
    height, width = image.shape[:2]
    factor = side / max(height, width)
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), factor


def rotate_expanded(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned ``angle`` degrees anticlockwise on a canvas large enough to hold all
    of it, and the 2×3 matrix that maps its pixels back to ``image`` coordinates."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = round(height * sin + width * cos)
    new_height = round(height * cos + width * sin)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    # Replicated edges rather than black corners: a hard black edge makes false hits.
    turned = cv2.warpAffine(image, matrix, (new_width, new_height), borderMode=cv2.BORDER_REPLICATE)
    return turned, cv2.invertAffineTransform(matrix)


GROUP_EPS = 0.2
"""How close hits must be to count as one spot: OpenCV's own ``detectMultiScale`` value."""


PROBE_SCALE = 1.15
"""Scale step of the quick look for small faces in a picture whose large windows found one
face (a third of the small windows' work at 1.05)."""


class CascadeDetector:
    """The LBP anime-face cascade (nagadomi's ``lbpcascade_animeface.xml``) through OpenCV 4.

    The picture is resized so its longer side is ``detect_side`` (enlarged when smaller) and,
    when ``angle`` is not 0, turned by ``angle`` degrees first: the cascade only finds upright
    faces, and heads tilted ~30° are common in group pictures. A box found on the turned
    picture keeps its size and is centred where its centre falls in the picture.

    With ``large_first`` set, windows of at least that many pixels (of the resized copy) are
    searched first. When that finds exactly one face with no other hit away from it, the
    small windows are only probed in coarse steps (:data:`PROBE_SCALE`), and if that shows no
    hit away from the face either, the picture is taken for a portrait and searched no
    further: the small windows are most of the work (with scale 1.05 from 24 px, windows
    under 64 px are 85% of it). Otherwise the small windows are searched in full and both
    searches' hits are grouped together, exactly as one search over every size groups them.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str = "cascade",
        detect_side: int = 320,
        scale_factor: float = 1.05,
        min_neighbors: int = 3,
        min_size: int = 24,
        angle: float = 0.0,
        large_first: int | None = None,
    ) -> None:
        if not Path(path).is_file():
            raise DetectorConfigError(f"cascade file not found: {path}")
        self.file_digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
        self._cascade = cv2.CascadeClassifier()
        try:
            loaded = self._cascade.load(str(path))
        except (cv2.error, SystemError) as exc:  # unparsable files raise instead
            raise DetectorConfigError(f"not a cascade OpenCV can load: {path}") from exc
        # Some wrong files load silently as an empty classifier.
        if not loaded or self._cascade.empty():
            raise DetectorConfigError(f"not a cascade OpenCV can load: {path}")
        self.name = name
        self.detect_side = detect_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.angle = angle
        self.large_first = large_first

    def rotated(self, angle: float, name: str | None = None) -> CascadeDetector:
        """The same cascade and settings, detecting on the picture turned by ``angle``."""
        twin = copy.copy(self)  # shares the loaded classifier (read-only while detecting)
        twin.angle = angle
        twin.name = name if name is not None else f"{self.name}@{angle:g}"
        return twin

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces found by the cascade; confidence grows with the number of neighbour hits."""
        return self.detect_with_hints(image)[0]

    def detect_with_hints(self, image: np.ndarray) -> tuple[list[Face], list[Box]]:
        """The faces, and hints: the boxes of every spot with at least two overlapping hits.

        A hint away from the faces found says the picture may hold faces the cascade missed
        (for instance tilted ones). The raw hits are grouped here as ``detectMultiScale``
        groups them, so hints cost no second pass.
        """
        small, factor = resize_to(image, self.detect_side)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        back = None
        if self.angle:
            grey, back = rotate_expanded(grey, self.angle)
        if self.large_first and self.large_first > self.min_size:
            hits = self._hits(grey, self.large_first)
            faces, hints = self._group(hits, back, factor)
            if is_one_face_alone(faces, hints):
                probe = self._hits(grey, self.min_size, self.large_first - 1, PROBE_SCALE)
                # A spot split between the two searches, or seen in coarse steps, has fewer
                # hits than one full search gives it: here any single hit counts as a hint.
                single = [self._to_image(rect, back, factor) for rect in hits + probe]
                if is_one_face_alone(faces, single):
                    return faces, hints
            hits += self._hits(grey, self.min_size, self.large_first - 1)
        else:
            hits = self._hits(grey, self.min_size)
        return self._group(hits, back, factor)

    def _hits(
        self, grey: np.ndarray, smallest: int, largest: int = 0, scale_factor: float = 0.0
    ) -> list[list[int]]:
        """Every window the cascade accepts (ungrouped), sized from ``smallest`` to
        ``largest`` pixels (0: no limit). OpenCV scans the same scales either way (skipping
        windows out of range), so split ranges give the hits of one full search."""
        raw = self._cascade.detectMultiScale(
            grey,
            scaleFactor=scale_factor or self.scale_factor,
            minNeighbors=0,  # every hit, ungrouped
            minSize=(smallest, smallest),
            maxSize=(largest, largest),
        )
        return [[int(v) for v in rect] for rect in raw]

    def _group(
        self, hits: list[list[int]], back: np.ndarray | None, factor: float
    ) -> tuple[list[Face], list[Box]]:
        """Faces (spots with ``min_neighbors`` hits) and hints (spots with two) of ``hits``."""
        if not hits:
            return [], []
        boxes, counts = cv2.groupRectangles(hits, self.min_neighbors, GROUP_EPS)
        faces = []
        for rect, n in zip(boxes, np.ravel(counts), strict=True):
            confidence = float(min(1.0, n / (3.0 * max(1, self.min_neighbors))))
            faces.append(Face(self._to_image(rect, back, factor), self.name, confidence))
        hinted, _ = cv2.groupRectangles(hits, 1, GROUP_EPS)
        return faces, [self._to_image(rect, back, factor) for rect in hinted]

    @staticmethod
    def _to_image(rect: Sequence[int], back: np.ndarray | None, factor: float) -> Box:
        """A box of the resized (and turned) copy in the coordinates of the picture."""
        x, y, w, h = (int(v) for v in rect)
        if back is not None:
            cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
            x, y = round(cx - w / 2), round(cy - h / 2)
        return Box(x, y, w, h).scaled(1.0 / factor)


class AnimeFaceDetector:
    """The animeface-2009 detector (``animeface`` package, nvxs)."""

    name = "animeface"

    def __init__(self, *, detect_side: int = 288, min_likelihood: float = 0.5) -> None:
        self.detect_side = detect_side
        self.min_likelihood = min_likelihood

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces animeface finds with at least ``min_likelihood``."""
        import animeface  # a C extension; imported on first use only

        small, factor = downscale(image, self.detect_side)
        faces = []
        for found in animeface.detect(Image.fromarray(small)):
            if found.likelihood < self.min_likelihood:
                continue
            pos = found.face.pos
            box = Box(int(pos.x), int(pos.y), int(pos.width), int(pos.height))
            faces.append(Face(box.scaled(1.0 / factor), self.name, float(found.likelihood)))
        return faces


class NoFace:
    """What is classified when no detector finds a face: the picture as a whole, said plainly.

    Its detector name is ``"none"``, so answers can tell "no face found" from a face. The box
    is where a portrait's face usually is (a square of 60% of the shorter side, centred, a
    little above the middle), so the crop views go from that guess (1.0×) to about the whole
    picture (2.0×). A box of the whole picture instead made every view but the first mostly
    repeated edge: on ``naruto10`` (screenshots in which the cascade often finds no face) the
    whole-picture box named 84.6% of the test pictures, this box 91.3% (same code otherwise).
    """

    name = "none"

    def detect(self, image: np.ndarray) -> list[Face]:
        """One box, with confidence 0."""
        height, width = image.shape[:2]
        side = max(1, round(0.6 * min(width, height)))
        x = (width - side) // 2
        y = max(0, min(height - side, round(0.38 * height - side / 2)))
        return [Face(Box(x, y, side, side), self.name, 0.0)]


def merge_faces(faces: Sequence[Face], overlap: float = 0.5) -> list[Face]:
    """Fold boxes that cover the same face (overlap of the smaller box ≥ ``overlap``) into one.

    The most confident box of a group stays; its detector name lists every detector that
    agreed (``"cascade+animeface"``) and agreement raises its confidence.
    """
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.confidence, reverse=True):
        for i, other in enumerate(kept):
            if face.box.overlap_of_smaller(other.box) >= overlap:
                names = other.detector.split("+")
                if face.detector not in names:
                    confidence = 1.0 - (1.0 - other.confidence) * (1.0 - face.confidence)
                    detector = "+".join([*names, face.detector])
                    kept[i] = replace(other, detector=detector, confidence=confidence)
                break
        else:
            kept.append(face)
    return kept


def prominence(face: Face, width: int, height: int) -> float:
    """How much a face is the picture's subject: its size, weighted by confidence and centrality."""
    cx, cy = face.box.center
    off_centre = abs(cx / width - 0.5) + abs(cy / height - 0.4)
    return face.box.area * (0.5 + 0.5 * face.confidence) * (1.0 - 0.5 * min(1.0, off_centre))


class FaceFinder:
    """Runs the detectors in stages and merges what they find.

    The primary detectors always run; the tilted ones unless the primary stage found exactly
    one face and saw nothing else (the common portrait: a group picture needs the extra
    look, and hints away from the one face say there may be more); the backups only if
    nothing was found; the fallback only if still nothing.
    ``find`` returns merged faces ordered by prominence: the first is the main subject.
    """

    def __init__(
        self,
        primary: Sequence[FaceDetector],
        backups: Sequence[FaceDetector] = (),
        fallback: FaceDetector | None = None,
        *,
        tilted: Sequence[FaceDetector] = (),
        doubtful: Doubtful | None = None,
    ) -> None:
        if not primary and not backups and fallback is None:
            raise DetectorConfigError("no face detector configured")
        self.primary = tuple(primary)
        self.tilted = tuple(tilted)
        self.backups = tuple(backups)
        self.fallback = fallback
        self.doubtful = doubtful

    def describe(self) -> str:
        """Every detector and its settings: what the trainer's embedding cache is keyed on."""
        stages = [
            list(self.primary),
            list(self.tilted),
            list(self.backups),
            [self.fallback] if self.fallback else [],
        ]

        def settings(detector: FaceDetector) -> str:
            public = {k: v for k, v in vars(detector).items() if not k.startswith("_")}
            return f"{detector.name}{sorted(public.items())}"

        described = " | ".join(",".join(settings(d) for d in stage) for stage in stages)
        return described + (f" | {self.doubtful}" if self.doubtful else "")

    def find(self, image: np.ndarray) -> list[Face]:
        """Every face in ``image`` (never empty when a fallback is set), most prominent first."""
        height, width = image.shape[:2]
        found: list[Face] = []
        hints: list[Box] = []
        for detector in self.primary:
            if isinstance(detector, HintingDetector):
                faces, more = detector.detect_with_hints(image)
                found += faces
                hints += more
            else:
                found += detector.detect(image)
        if self.tilted and not is_one_face_alone(merge_faces(found), hints):
            found += [face for detector in self.tilted for face in detector.detect(image)]
        if not found:
            found = [face for detector in self.backups for face in detector.detect(image)]
        if not found and self.fallback is not None:
            found = self.fallback.detect(image)
        merged = merge_faces(found)
        if self.doubtful is not None:
            merged = self.doubtful.drop(merged)
        return sorted(merged, key=lambda f: prominence(f, width, height), reverse=True)


@dataclass(frozen=True, slots=True)
class Doubtful:
    """Which faces of a picture with several faces are dropped as likely false hits.

    The cascade's false hits in group pictures (a bow, a sleeve, a glove) are found by one
    detector only, with few neighbour hits, and are smaller than the picture's real faces;
    real faces are usually found by the upright and the tilted pass together, or with many
    hits. A face is dropped when all three hold: one detector found it, its confidence is
    below ``confidence``, and its box is narrower than ``share`` of the widest face's.
    """

    confidence: float = 0.5
    share: float = 0.7

    def drop(self, faces: Sequence[Face]) -> list[Face]:
        """``faces`` without the doubtful ones (a lone face is never dropped)."""
        if len(faces) < 2:
            return list(faces)
        widest = max(face.box.w for face in faces)
        return [
            face
            for face in faces
            if "+" in face.detector
            or face.confidence >= self.confidence
            or face.box.w >= self.share * widest
        ]


def default_face_finder(cascade_path: Path | None = None) -> FaceFinder:
    """The detectors the bot and the trainer use.

    With the cascade: the upright cascade on a 320 px copy, the cascade on copies turned
    ±30° when that did not find exactly one face, animeface and a relaxed cascade on a
    640 px copy when nothing was found. Without it, animeface alone (on a 448 px copy, then
    a 288 px one). The whole picture, named ``"none"``, stands in when no detector finds a
    face.
    """
    if cascade_path is None:
        # animeface misses large faces on its copy (a drawn face 120 px wide on the 448 px
        # copy was missed, found on a 288 px one): 448 px finds the small faces of group
        # pictures (56% of quint_groups' boxes, 25% at 320 px), 288 px, only when that found
        # nothing, the large face of a portrait (seed pictures with a face: 88/89, 84 without).
        return FaceFinder(
            [AnimeFaceDetector(detect_side=448)],
            [AnimeFaceDetector(detect_side=288)],
            NoFace(),
        )
    upright = CascadeDetector(cascade_path, large_first=40)
    tilted = CascadeDetector(cascade_path, detect_side=256, scale_factor=1.1)
    relaxed = CascadeDetector(
        cascade_path, name="cascade-relaxed", detect_side=640, min_neighbors=2
    )
    return FaceFinder(
        [upright],
        [AnimeFaceDetector(detect_side=320), relaxed],
        NoFace(),
        tilted=[tilted.rotated(30, "cascade-tilted"), tilted.rotated(-30, "cascade-tilted")],
        doubtful=Doubtful(),
    )
