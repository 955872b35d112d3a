"""The head's stored form (bot.vision.head): a half-precision gallery, float32 scoring."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from bot.errors import BundleError
from bot.vision.head import HEAD_FORMAT, Head, UnsureRule, l2_normalise

DIM = 7680
"""Three views of 2,560 numbers, as the fine-tuned backbone gives."""


def head_of(dim: int = DIM, faces_per_label: int = 20, labels: int = 6, seed: int = 3) -> Head:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dim))
    gallery = np.concatenate(
        [centres[i] + 0.8 * rng.normal(size=(faces_per_label, dim)) for i in range(labels)]
    )
    return Head(
        labels=tuple(f"character {i}" for i in range(labels)),
        weights=(rng.normal(size=(dim, labels)) / np.sqrt(dim)).astype(np.float32),
        bias=rng.normal(size=labels).astype(np.float32),
        gallery=l2_normalise(gallery).astype(np.float32),
        gallery_labels=np.repeat(np.arange(labels), faces_per_label),
        top_k=5,
        unsure=UnsureRule(0.6, 0.5),
    )


def faces(head: Head, count: int = 50, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = np.asarray(head.gallery)[rng.integers(0, len(head.gallery), count)]
    return (picked + 0.5 * rng.normal(size=picked.shape) / np.sqrt(head.dim)).astype(np.float32)


def written_as_float32(head: Head) -> bytes:
    """A head as written before the gallery was stored in half precision."""
    buffer = io.BytesIO()
    meta = {
        "format": 1,
        "labels": list(head.labels),
        "top_k": head.top_k,
        "unsure": {"threshold": head.unsure.threshold, "prob_weight": head.unsure.prob_weight},
    }
    np.savez(
        buffer,
        meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
        weights=head.weights,
        bias=head.bias,
        gallery=head.gallery.astype(np.float32),
        gallery_labels=head.gallery_labels.astype(np.int32),
    )
    return buffer.getvalue()


def test_a_round_tripped_head_scores_within_a_thousandth() -> None:
    head = head_of()
    seen = faces(head)

    again = Head.from_bytes(head.to_bytes())

    probs, familiarity = head.score(seen)
    probs_again, familiarity_again = again.score(seen)
    assert np.abs(probs_again - probs).max() < 1e-3
    assert np.abs(familiarity_again - familiarity).max() < 1e-3
    assert not np.array_equal(again.gallery, head.gallery), "the gallery was not rounded"


def test_the_gallery_is_stored_in_half_precision_and_scored_in_single() -> None:
    head = head_of()

    stored = head.to_bytes()

    with np.load(io.BytesIO(stored)) as arrays:
        assert arrays["gallery"].dtype == np.float16
    assert len(stored) < 0.55 * len(written_as_float32(head))
    assert Head.from_bytes(stored).gallery.dtype == np.float32


def test_a_head_written_with_a_float32_gallery_still_loads_and_scores_the_same() -> None:
    head = head_of(dim=64)

    old = Head.from_bytes(written_as_float32(head))

    assert old.gallery.dtype == np.float32
    np.testing.assert_array_equal(old.gallery, head.gallery)
    for mine, theirs in zip(head.score(faces(head)), old.score(faces(head)), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


def test_a_head_of_an_unknown_format_is_refused_with_the_formats_read() -> None:
    buffer = io.BytesIO(written_as_float32(head_of(dim=8)))
    with np.load(buffer) as arrays:
        fields = dict(arrays)
    meta = json.loads(fields["meta"].tobytes())
    meta["format"] = HEAD_FORMAT + 1
    fields["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    newer = io.BytesIO()
    np.savez(newer, **fields)

    with pytest.raises(BundleError, match=rf"format {HEAD_FORMAT + 1}; this bot reads 1, 2, 3$"):
        Head.from_bytes(newer.getvalue())


def narrowed(full: Head, dims: np.ndarray, top_k: int) -> Head:
    """``full`` with a gallery of the dimensions ``dims`` of its rows only."""
    return Head(
        full.labels,
        full.weights,
        full.bias,
        l2_normalise(np.asarray(full.gallery)[:, dims]).astype(np.float32),
        full.gallery_labels,
        top_k,
        full.unsure,
        gallery_dims=dims,
    )


def test_familiarity_compares_only_the_gallery_dimensions() -> None:
    """A head whose gallery keeps some dimensions of each embedding: familiarity is the
    cosine similarity over those alone, whatever the other dimensions hold."""
    full = head_of(dim=64, faces_per_label=5, labels=3)
    dims = np.arange(0, 64, 2)
    head = narrowed(full, dims, top_k=1)
    probe = np.asarray(full.gallery)[:1].copy()
    scrambled = probe.copy()
    scrambled[:, 1::2] = np.random.default_rng(5).normal(size=32)
    _, familiarity = head.score(probe)
    _, familiarity_scrambled = head.score(scrambled)
    assert familiarity[0, full.gallery_labels[0]] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(familiarity, familiarity_scrambled, atol=1e-5)
    _, whole = full.score(scrambled)
    assert whole[0, full.gallery_labels[0]] < 0.9  # on every dimension it is no longer alike


def test_gallery_dimensions_survive_a_round_trip_and_a_format_1_head_has_none() -> None:
    full = head_of(dim=64, faces_per_label=5, labels=3)
    dims = np.arange(10, 42)
    head = narrowed(full, dims, top_k=2)
    again = Head.from_bytes(head.to_bytes())
    assert again.gallery_dims is not None
    np.testing.assert_array_equal(again.gallery_dims, dims)
    assert again.gallery.shape == (15, 32)
    assert Head.from_bytes(full.to_bytes()).gallery_dims is None
    assert Head.from_bytes(written_as_float32(full)).gallery_dims is None


@pytest.mark.parametrize("dims", [np.arange(70), np.array([-1, 3]), np.zeros(0, np.int64)])
def test_gallery_dimensions_outside_the_embedding_are_refused(dims: np.ndarray) -> None:
    full = head_of(dim=64, faces_per_label=2, labels=2)
    with pytest.raises(BundleError, match="gallery"):
        Head(
            full.labels,
            full.weights,
            full.bias,
            np.zeros((4, len(dims)), np.float32),
            full.gallery_labels,
            1,
            full.unsure,
            gallery_dims=dims,
        )


def test_familiarity_is_relative_to_each_labels_typical_familiarity() -> None:
    plain = head_of(dim=64)
    typical = np.linspace(0.2, 0.7, plain.label_count).astype(np.float32)
    relative = dataclasses.replace(plain, typical_familiarity=typical)
    seen = faces(plain)

    probs, familiarity = plain.score(seen)
    probs_relative, familiarity_relative = relative.score(seen)

    np.testing.assert_array_equal(probs_relative, probs)
    np.testing.assert_allclose(familiarity_relative, familiarity - typical, atol=1e-6)


def test_typical_familiarity_survives_the_round_trip_and_older_heads_have_none() -> None:
    typical = np.linspace(0.2, 0.7, 6).astype(np.float32)
    head = dataclasses.replace(head_of(dim=64), typical_familiarity=typical)

    again = Head.from_bytes(head.to_bytes())
    old = Head.from_bytes(written_as_float32(head))  # format 1: raw familiarity

    assert again.typical_familiarity is not None
    np.testing.assert_allclose(again.typical_familiarity, typical, atol=1e-6)
    assert old.typical_familiarity is None
    _, raw = old.score(faces(head))
    _, relative = again.score(faces(head))
    np.testing.assert_allclose(relative, raw - typical, atol=1e-3)


@pytest.mark.parametrize("typical", [np.zeros(5), np.array([0.1, 0.2, np.nan, 0.3, 0.4, 0.5])])
def test_a_typical_familiarity_that_does_not_fit_the_labels_is_refused(
    typical: np.ndarray,
) -> None:
    with pytest.raises(BundleError, match="typical familiarity is not 6 finite numbers"):
        dataclasses.replace(head_of(dim=64), typical_familiarity=typical.astype(np.float32))
