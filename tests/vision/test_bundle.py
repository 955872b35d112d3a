"""Tests for model bundles: atomic writes, refusal of inconsistent ones (bot.vision.bundle)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.errors import BundleError
from bot.vision.bundle import (
    FORMAT_VERSION,
    HEAD_FILE,
    INFO_FILE,
    LABELS_FILE,
    MODEL_FILE,
    BackboneInfo,
    UnsureRule,
    load_bundle,
    write_bundle,
)
from bot.vision.crop import CropSettings
from tests.bundles import toy_backbone, toy_head

MODEL = b"TFL3 not really a model, but bundles do not look inside"
LABELS = ("nishikino maki", "sakurauchi riko", "takimoto hifumi")


BACKBONE = toy_backbone()


def info(**overrides: Any) -> dict[str, Any]:
    """The metadata a trainer passes to write_bundle (it adds labels, parts and checksums)."""
    values: dict[str, Any] = {"version": "20250101-000000-abcdef12", "metrics": {"top1": 0.97}}
    values.update(overrides)
    return values


def write(
    dest: Path,
    model: bytes = MODEL,
    labels: tuple[str, ...] = LABELS,
    values: dict[str, Any] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """``write_bundle`` with a toy head for ``labels`` over the toy backbone's embeddings."""
    head = toy_head(labels, BACKBONE.embedding_dim)
    return write_bundle(dest, model, head, BACKBONE, info() if values is None else values, extra)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write(tmp_path / "bundle")


def leftovers(parent: Path, keep: str = "bundle") -> list[str]:
    """Everything in ``parent`` besides the bundle itself (temporary or old directories)."""
    return sorted(p.name for p in parent.iterdir() if p.name != keep)


def edit_info(path: Path, **changes: Any) -> None:
    values = json.loads((path / INFO_FILE).read_text())
    values.update(changes)
    (path / INFO_FILE).write_text(json.dumps(values))


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------


def test_a_written_bundle_loads_back(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    assert loaded.path == bundle
    assert loaded.labels == LABELS
    assert loaded.crop == CropSettings(margins=(1.0, 1.5), lift=0.1, size=224)
    assert loaded.unsure == UnsureRule(threshold=0.62, prob_weight=0.5)
    assert loaded.version == "20250101-000000-abcdef12"
    assert loaded.model_path.read_bytes() == MODEL
    assert loaded.info["metrics"] == {"top1": 0.97}


def test_write_bundle_completes_the_metadata(bundle: Path) -> None:
    written = json.loads((bundle / INFO_FILE).read_text())
    assert written["format_version"] == FORMAT_VERSION
    assert written["label_count"] == len(LABELS)
    assert written["labels"] == list(LABELS)
    assert written["tflite_sha256"] == hashlib.sha256(MODEL).hexdigest()
    assert written["head_sha256"] == hashlib.sha256((bundle / HEAD_FILE).read_bytes()).hexdigest()
    assert BackboneInfo.from_dict(written["backbone"]) == BACKBONE
    assert written["unsure"] == {"threshold": 0.62, "prob_weight": 0.5}


def test_labels_are_written_one_a_line_in_output_order(bundle: Path) -> None:
    assert (bundle / LABELS_FILE).read_text("utf-8") == "".join(f"{label}\n" for label in LABELS)


def test_extra_files_are_written_beside_the_model(tmp_path: Path) -> None:
    path = write(tmp_path / "b", extra={"report.md": b"# Report\n"})
    assert (path / "report.md").read_bytes() == b"# Report\n"


def test_a_bundle_loads_from_a_string_path(bundle: Path) -> None:
    assert load_bundle(str(bundle)).labels == LABELS


def test_blank_lines_in_labels_are_ignored(bundle: Path) -> None:
    (bundle / LABELS_FILE).write_text("\n" + "\n\n".join(LABELS) + "\n\n", "utf-8")
    assert load_bundle(bundle).labels == LABELS


def test_non_ascii_labels_round_trip(tmp_path: Path) -> None:
    labels = ("西木野真姫", "Émilie", "riko")
    assert load_bundle(write(tmp_path / "b", labels=labels)).labels == labels


def test_a_bundle_without_a_version_says_unknown(tmp_path: Path) -> None:
    values = info()
    del values["version"]
    assert load_bundle(write(tmp_path / "b", values=values)).version == "unknown"


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def remove(name: str) -> Callable[[Path], object]:
    return lambda path: (path / name).unlink()


def write_labels(text: str) -> Callable[[Path], object]:
    return lambda path: (path / LABELS_FILE).write_text(text, "utf-8")


def set_info(**changes: Any) -> Callable[[Path], object]:
    return lambda path: edit_info(path, **changes)


def drop_info(key: str) -> Callable[[Path], object]:
    def edit(path: Path) -> None:
        values = json.loads((path / INFO_FILE).read_text())
        del values[key]
        (path / INFO_FILE).write_text(json.dumps(values))

    return edit


REFUSALS: dict[str, tuple[Callable[[Path], object], str]] = {
    "model missing": (remove(MODEL_FILE), r"incomplete: model\.tflite missing"),
    "labels missing": (remove(LABELS_FILE), r"incomplete: labels\.txt missing"),
    "info missing": (remove(INFO_FILE), r"incomplete: model\.json missing"),
    "more labels than model.json says": (
        write_labels("a\nb\nc\nd\n"),
        r"disagrees with itself: labels\.txt has 4 labels, model\.json says 3",
    ),
    "fewer labels than model.json says": (
        write_labels("a\nb\n"),
        r"labels\.txt has 2 labels, model\.json says 3",
    ),
    "labels in another order": (
        write_labels("\n".join(reversed(LABELS))),
        r"disagrees with itself",
    ),
    "duplicate labels": (
        write_labels("nishikino maki\nsakurauchi riko\nnishikino maki\n"),
        r"lists a label twice",
    ),
    "one label": (write_labels("nishikino maki\n"), r"names 1 label\(s\); 2 are needed"),
    "labels not utf-8": (
        lambda path: (path / LABELS_FILE).write_bytes(b"\xff\xfe\x00bad"),
        r"cannot be read",
    ),
    "head missing": (remove(HEAD_FILE), r"incomplete: head\.npz missing"),
    "newer format": (set_info(format_version=3), r"has format 3; this bot reads format 2"),
    "format 1 (backbone and head in one file)": (
        set_info(format_version=1),
        r"has format 1; this bot reads format 2 \(train it again\)",
    ),
    "no format": (drop_info("format_version"), r"has format None"),
    "tampered model": (
        lambda path: (path / MODEL_FILE).write_bytes(MODEL + b"\x00"),
        r"model\.tflite does not match the checksum in model\.json",
    ),
    "invalid json": (
        lambda path: (path / INFO_FILE).write_text('{"format_version": 2,'),
        r"cannot be read",
    ),
    "json not an object": (
        lambda path: (path / INFO_FILE).write_text("[1, 2, 3]"),
        r"model\.json is not a JSON object",
    ),
    "no backbone description": (drop_info("backbone"), r"lacks a valid backbone description"),
    "negative crop margin": (
        set_info(backbone={**BACKBONE.to_dict(), "crop": {"margins": [-1.0], "lift": 0.1}}),
        r"lacks a valid backbone description",
    ),
    "backbone input size unlike its crop": (
        set_info(backbone={**BACKBONE.to_dict(), "input_size": 160}),
        r"lacks a valid backbone description",
    ),
    "head for other embeddings": (
        set_info(backbone={**BACKBONE.to_dict(), "feature_dim": 5}),
        r"the head takes embeddings of 8 numbers, the backbone gives 10",
    ),
    "tampered head": (
        lambda path: (path / HEAD_FILE).write_bytes(b"PK not a head"),
        r"head\.npz does not match the checksum in model\.json",
    ),
    "head not an npz": (
        lambda path: [
            (path / HEAD_FILE).write_bytes(b"PK not a head"),
            edit_info(path, head_sha256=None),
        ],
        r"the head cannot be read",
    ),
}


@pytest.mark.parametrize(("damage", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_an_inconsistent_bundle_is_refused_with_a_reason(
    bundle: Path, damage: Callable[[Path], object], message: str
) -> None:
    damage(bundle)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_a_missing_bundle_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"no model bundle at .*python -m trainer train"):
        load_bundle(tmp_path / "nowhere")


def test_a_file_instead_of_a_bundle_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.tflite").write_bytes(MODEL)
    with pytest.raises(BundleError, match="no model bundle at"):
        load_bundle(tmp_path / "model.tflite")


def test_the_refusal_message_names_every_missing_part(bundle: Path) -> None:
    (bundle / MODEL_FILE).unlink()
    (bundle / INFO_FILE).unlink()
    with pytest.raises(BundleError, match=r"model\.tflite, model\.json missing"):
        load_bundle(bundle)


def test_a_head_whose_labels_differ_from_labels_txt_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "b")
    other = toy_head(("a", "b", "c"), BACKBONE.embedding_dim).to_bytes()
    (path / HEAD_FILE).write_bytes(other)
    edit_info(path, head_sha256=hashlib.sha256(other).hexdigest())
    with pytest.raises(BundleError, match=r"labels\.txt and head\.npz list different labels"):
        load_bundle(path)


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def test_writing_over_a_bundle_replaces_it_and_leaves_nothing_behind(bundle: Path) -> None:
    write(bundle, b"new model", ("a", "b"), info(version="v2"), {"report.md": b"new"})
    loaded = load_bundle(bundle)
    assert loaded.labels == ("a", "b")
    assert loaded.version == "v2"
    assert loaded.model_path.read_bytes() == b"new model"
    assert leftovers(bundle.parent) == []


def test_files_of_the_old_bundle_do_not_survive_a_rewrite(tmp_path: Path) -> None:
    path = write(tmp_path / "bundle", extra={"confusion.png": b"png"})
    write(path)
    assert not (path / "confusion.png").exists()


def test_a_bundle_that_would_be_refused_is_never_put_in_place(bundle: Path) -> None:
    with pytest.raises(BundleError, match="lists a label twice"):
        write(bundle, b"new model", ("a", "a"), info(version="v2"))
    assert load_bundle(bundle).version == "20250101-000000-abcdef12"
    assert leftovers(bundle.parent) == []


def test_a_failed_file_write_leaves_the_old_bundle_and_no_temporary_directory(
    bundle: Path,
) -> None:
    with pytest.raises(OSError):
        write(bundle, b"new model", extra={"no/such/folder.md": b"x"})
    assert load_bundle(bundle).model_path.read_bytes() == MODEL
    assert leftovers(bundle.parent) == []


def failing_replace(
    monkeypatch: pytest.MonkeyPatch, fail_when: Callable[[Path, Path], bool]
) -> None:
    """Make ``os.replace`` raise for the renames ``fail_when`` picks (as a full disk might)."""
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if fail_when(Path(src), Path(dst)):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_a_failure_moving_the_old_bundle_aside_leaves_it_intact(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_replace(monkeypatch, lambda src, dst: src == bundle)
    with pytest.raises(OSError, match="No space left"):
        write(bundle, b"new model", ("a", "b"), info(version="v2"))
    monkeypatch.undo()
    assert load_bundle(bundle).labels == LABELS
    assert leftovers(bundle.parent) == []


def test_a_failure_renaming_the_new_bundle_into_place_leaves_the_old_one_intact(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_replace(monkeypatch, lambda src, dst: dst == bundle)
    with pytest.raises(OSError, match="No space left"):
        write(bundle, b"new model", ("a", "b"), info(version="v2"))
    monkeypatch.undo()
    assert load_bundle(bundle).labels == LABELS
    assert leftovers(bundle.parent) == []


def test_a_first_bundle_that_fails_to_land_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "bundle"
    failing_replace(monkeypatch, lambda src, dst: dst == dest)
    with pytest.raises(OSError, match="No space left"):
        write(dest)
    assert sorted(tmp_path.iterdir()) == []


def test_write_bundle_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = write(tmp_path / "models" / "current")
    assert load_bundle(path).labels == LABELS


# ---------------------------------------------------------------------------------------------
# The unsure rule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "score", "familiarity", "unsure"),
    [
        (UnsureRule(0.9, 0.5), 0.9, 0.5, False),  # 0.5 + 0.45 = 0.95
        (UnsureRule(0.9, 0.5), 0.6, 0.5, True),  # 0.5 + 0.30 = 0.80
        (UnsureRule(0.9, 0.5), 0.8, 0.5, False),  # exactly at the threshold is sure
        (UnsureRule(0.9, 0.0), 1.0, 0.89, True),  # familiarity alone
        (UnsureRule(float("inf")), 1.0, 1.0, True),  # nothing is ever sure
    ],
)
def test_unsure_rule(rule: UnsureRule, score: float, familiarity: float, unsure: bool) -> None:
    assert rule.is_unsure(score, familiarity) is unsure


def test_familiarity_dims_are_the_leading_features_of_every_view() -> None:
    from bot.vision.bundle import BackboneInfo, familiarity_dims

    crop = CropSettings(margins=(1.0, 1.5, 2.0), lift=0.1, size=160)
    info = BackboneInfo("b", "0" * 64, 160, 6, crop, familiar_features=2)
    dims = info.familiarity_dims()
    assert dims is not None
    assert dims.tolist() == [0, 1, 6, 7, 12, 13]
    assert BackboneInfo.from_dict(info.to_dict()) == info
    assert familiarity_dims(6, 3, None) is None and familiarity_dims(6, 3, 6) is None
    plain = BackboneInfo("b", "0" * 64, 160, 6, crop)
    assert "familiar_features" not in plain.to_dict()
    assert BackboneInfo.from_dict(plain.to_dict()).familiarity_dims() is None
