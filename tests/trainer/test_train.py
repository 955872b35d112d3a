"""End-to-end tests of the trainer on a tiny synthetic data set (trainer.train, trainer.__main__).

As in TFLite Model Maker's tests: a few drawn pictures per class, one real training run,
export, then check the bundle, the report, and that TFLite agrees with the Keras model.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the trainer extra (TensorFlow) is not installed")

import trainer.train
from bot.errors import TrainingError
from bot.vision.bundle import BackboneInfo, load_bundle
from bot.vision.classifier import FaceClassifier
from bot.vision.crop import CropSettings
from bot.vision.embedder import combine_views
from bot.vision.faces import default_face_finder
from tests.pictures import (
    CHARACTERS,
    TINY_LABELS,
    TINY_SKIPPED,
    TinyRun,
    character_picture,
    encode,
    tiny_training_run,
    write_dataset,
)
from trainer import progress
from trainer.__main__ import main as trainer_main
from trainer.dataset import find_faces
from trainer.features import CachedFaces, Embedder, EmbeddingCache
from trainer.finetune import FineTuneOptions
from trainer.head import score
from trainer.train import TrainOptions, train

REPO = Path(__file__).resolve().parents[2]
FEW = FineTuneOptions(steps=6, copies=2, batch_size=16)
"""Fine-tuning of the further runs: the tests check the pipeline, not what tuning buys."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return tiny_training_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model_json(run: TinyRun) -> dict[str, Any]:
    return json.loads((run.bundle / "model.json").read_text("utf-8"))


def training_pictures(run: TinyRun) -> list[tuple[Path, str]]:
    """Every usable picture of the tiny run with the label it was filed under."""
    return [
        (path, folder.name.replace("_", " "))
        for folder in sorted(run.data.iterdir())
        for path in sorted(folder.iterdir())
        if f"{folder.name}/{path.name}" not in TINY_SKIPPED
    ]


def reuse_backbone(monkeypatch: pytest.MonkeyPatch, run: TinyRun) -> None:
    """Let a further train() use the tiny run's backbone instead of building another."""
    monkeypatch.setattr(trainer.train, "build_backbone", lambda name, size: run.backbone)


def copy_data(run: TinyRun, dest: Path) -> Path:
    shutil.copytree(run.data, dest)
    for name in TINY_SKIPPED:
        (dest / name).unlink()
    return dest


# ---------------------------------------------------------------------------------------------
# The bundle and report of one run
# ---------------------------------------------------------------------------------------------


def test_the_bundle_loads(run: TinyRun) -> None:
    bundle = load_bundle(run.bundle)
    assert bundle.crop == CropSettings()
    assert math.isfinite(bundle.unsure.threshold)


def test_labels_are_the_folder_names_in_words(run: TinyRun) -> None:
    assert load_bundle(run.bundle).labels == TINY_LABELS
    assert (run.bundle / "labels.txt").read_text("utf-8").split("\n") == [*TINY_LABELS, ""]


def test_model_json_describes_the_model(run: TinyRun, model_json: dict[str, Any]) -> None:
    backbone = BackboneInfo.from_dict(model_json["backbone"])
    # Per view: the tuned top's 1280 features beside the frozen top's.
    assert (backbone.name, backbone.input_size, backbone.feature_dim) == (
        "mobilenet_v2+tuned",
        160,
        2 * 1280,
    )
    assert backbone.crop == CropSettings.from_dict(model_json["crop"]) == CropSettings()
    # Familiarity compares the tuned features of each view only.
    assert backbone.familiar_features == 1280
    head = load_bundle(run.bundle).head
    assert head.gallery.shape[1] == 3 * 1280
    assert head.gallery_dims is not None and head.gallery_dims[1280] == 2560
    assert backbone.sha256 == hashlib.sha256((run.bundle / "model.tflite").read_bytes()).hexdigest()
    assert model_json["label_count"] == 3
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{8}", model_json["version"])
    assert model_json["created_at"].endswith("+00:00")
    assert model_json["tflite"]["precision"] == "int8"
    assert model_json["tflite"]["bytes"] == (run.bundle / "model.tflite").stat().st_size


def test_model_json_holds_the_held_out_metrics(model_json: dict[str, Any]) -> None:
    metrics = model_json["metrics"]
    # Every fifth picture of a character is held out, from the third on: one of five each.
    assert (metrics["method"], metrics["folds"], metrics["repeats"]) == ("held-out", 1, 1)
    assert model_json["training"]["held_out"] == 3
    assert 0.0 <= metrics["top1"] <= 1.0
    assert set(metrics["per_label"]) == set(TINY_LABELS)
    assert all(row["support"] == 1 for row in metrics["per_label"].values())
    assert np.array(metrics["confusion"]).shape == (3, 3)
    assert np.array(metrics["confusion"]).sum() == 3


def test_the_drawn_characters_are_told_apart_on_held_out_pictures(
    model_json: dict[str, Any],
) -> None:
    # Four pictures a character to learn from; chance is 1/3.
    assert model_json["metrics"]["top1"] >= 2 / 3


def test_model_json_holds_the_unsure_rule(model_json: dict[str, Any]) -> None:
    unsure = model_json["unsure"]
    assert math.isfinite(unsure["threshold"])
    assert unsure["prob_weight"] == 0.5
    assert unsure["false_flag_rate"] == 0.16
    # Calibrated on the held-out faces and two reframed copies of each.
    assert unsure["calibrated_on"] == 3 * 3


def test_model_json_describes_the_fine_tuning(model_json: dict[str, Any]) -> None:
    tuning = model_json["fine_tune"]
    assert (tuning["steps"], tuning["first_block"], tuning["copies_per_face"]) == (6, 11, 2)
    assert len(tuning["losses"]) >= 2 and all(math.isfinite(x) for x in tuning["losses"])


def test_model_json_summarises_the_training_set(model_json: dict[str, Any]) -> None:
    training = model_json["training"]
    assert training["pictures"] == 15 + len(TINY_SKIPPED)
    assert training["faces"] == 15
    assert training["per_label"] == dict.fromkeys(TINY_LABELS, 5)
    assert sum(training["face_detectors"].values()) == 15
    assert set(training["face_detectors"]) <= {"animeface", "none"}


def test_pictures_that_cannot_be_decoded_are_skipped_and_listed(
    model_json: dict[str, Any],
) -> None:
    training = model_json["training"]
    assert training["skipped"] == 2
    assert sorted(training["skipped_pictures"]) == [
        "char_a/notes.png: not a picture: looks like text",
        "char_b/empty.jpg: the picture is empty (0 bytes)",
    ]


def test_tflite_agreed_with_tensorflow_at_export(model_json: dict[str, Any]) -> None:
    assert 0.0 <= model_json["tflite"]["max_diff"] < trainer.train.AGREEMENT["int8"]


def test_report_is_written_beside_the_model(run: TinyRun, model_json: dict[str, Any]) -> None:
    report = (run.bundle / "report.md").read_text("utf-8")
    assert f"# Model {model_json['version']}" in report
    assert "top-1 on 3 held-out pictures" in report
    assert all(f"| {label} | 5 |" in report for label in TINY_LABELS)
    assert "char_a/notes.png" in report
    assert "![confusion matrix](confusion.png)" in report


def test_confusion_matrix_is_a_png(run: TinyRun) -> None:
    png = (run.bundle / "confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000


def test_no_temporary_directories_are_left_beside_the_bundle(run: TinyRun) -> None:
    assert sorted(p.name for p in run.bundle.parent.iterdir()) == ["bundle", "cache", "data"]


# ---------------------------------------------------------------------------------------------
# The exported model computes what was validated
# ---------------------------------------------------------------------------------------------


def test_tflite_scores_match_the_keras_head_on_a_training_picture(run: TinyRun) -> None:
    bundle = load_bundle(run.bundle)
    path, _ = training_pictures(run)[0]
    views, _ = find_faces(path.read_bytes(), default_face_finder(None), bundle.crop)
    pooled = run.split.features(run.split.stem_activations(views[0]))
    keras_scores, keras_familiarity = score(run.head, combine_views(pooled)[np.newaxis])
    tflite_embedding = FaceClassifier(bundle).embedder.embed(views[0])
    tflite_scores, tflite_familiarity = bundle.head.score(tflite_embedding)
    tolerance = trainer.train.AGREEMENT["int8"]  # the bundle's backbone computes in int8
    np.testing.assert_allclose(tflite_scores[0], keras_scores[0], atol=tolerance)
    np.testing.assert_allclose(tflite_familiarity[0], keras_familiarity[0], atol=tolerance)


def test_the_model_names_its_training_pictures(run: TinyRun) -> None:
    bundle = load_bundle(run.bundle)
    classifier = FaceClassifier(bundle)
    finder = default_face_finder(None)
    named = []
    for path, label in training_pictures(run):
        views, _ = find_faces(path.read_bytes(), finder, bundle.crop)
        named.append(classifier.classify(views[0]).best.label == label)
    assert all(named)


# ---------------------------------------------------------------------------------------------
# The embedding cache
# ---------------------------------------------------------------------------------------------


class EncodeCounter:
    """Wraps EmbeddingCache.put to list the pictures whose faces were detected and encoded,
    and put_extra to list the pictures whose held-out face's reframed copies were."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        self.reframed: list[str] = []
        real_put = EmbeddingCache.put
        real_put_extra = EmbeddingCache.put_extra

        def put(cache: EmbeddingCache, digest: str, faces: CachedFaces) -> None:
            self.calls.append(len(faces.detectors))
            real_put(cache, digest, faces)

        def put_extra(cache: EmbeddingCache, digest: str, key: str, encoded: np.ndarray) -> None:
            self.reframed.append(digest)
            real_put_extra(cache, digest, key, encoded)

        monkeypatch.setattr(EmbeddingCache, "put", put)
        monkeypatch.setattr(EmbeddingCache, "put_extra", put_extra)


def test_a_retrain_embeds_only_the_new_picture(
    run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_data(run, tmp_path / "data")
    new_picture = encode(character_picture(CHARACTERS[1], np.random.default_rng(123)))
    (data / "char_b" / "new.png").write_bytes(new_picture)
    faces_in_new, _ = find_faces(new_picture, default_face_finder(None), CropSettings())
    reuse_backbone(monkeypatch, run)
    counter = EncodeCounter(monkeypatch)
    options = TrainOptions(
        data=data, out=tmp_path / "bundle", cache_dir=run.cache, fine_tune=FEW, progress=False
    )
    result = train(options)
    assert counter.calls == [len(faces_in_new)]
    # only the new picture can be a newly held-out one whose reframed copies are encoded
    assert set(counter.reframed) <= {hashlib.sha256(new_picture).hexdigest()}
    assert result.info["training"]["per_label"]["char b"] == 6
    assert load_bundle(tmp_path / "bundle").labels == TINY_LABELS


def test_a_retrain_from_the_cache_alone_embeds_nothing_and_still_checks_the_export(
    run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_data(run, tmp_path / "data")
    reuse_backbone(monkeypatch, run)
    counter = EncodeCounter(monkeypatch)
    options = TrainOptions(
        data=data, out=tmp_path / "bundle", cache_dir=run.cache, fine_tune=FEW, progress=False
    )
    result = train(options)
    assert counter.calls == []
    assert counter.reframed == []
    held = result.info["training"]["held_out"]
    assert held > 0
    # the held-out faces and their reframed copies, all read from the cache
    assert result.info["unsure"]["calibrated_on"] == held * (1 + options.jitters)
    assert result.info["tflite"]["max_diff"] < trainer.train.AGREEMENT["int8"]
    assert result.info["training"]["faces"] == 15


def test_an_int8_backbone_that_disagrees_is_exported_in_float16_instead(
    run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy_data(run, tmp_path / "data")
    reuse_backbone(monkeypatch, run)
    monkeypatch.setitem(trainer.train.AGREEMENT, "int8", 1e-9)  # no int8 model can agree
    options = TrainOptions(
        data=data, out=tmp_path / "bundle", cache_dir=run.cache, fine_tune=FEW, progress=False
    )
    result = train(options)
    assert result.info["tflite"]["precision"] == "float16"
    assert result.info["tflite"]["max_diff"] < trainer.train.AGREEMENT["float16"]
    assert "exporting the backbone in float16 instead" in caplog.text
    assert load_bundle(tmp_path / "bundle").labels == TINY_LABELS


def test_progress_json_reports_each_stage_in_order_up_to_its_end(
    run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_data(run, tmp_path / "data")
    new_picture = encode(character_picture(CHARACTERS[2], np.random.default_rng(321)))
    (data / "char_c" / "new.png").write_bytes(new_picture)
    reuse_backbone(monkeypatch, run)
    lines = io.StringIO()
    progress.enable(lines)
    try:
        train(
            TrainOptions(
                data=data,
                out=tmp_path / "b",
                cache_dir=run.cache,
                fine_tune=FEW,
                progress=False,
            )
        )
    finally:
        progress.disable()
    steps = [json.loads(line) for line in lines.getvalue().splitlines()]
    stages = list(dict.fromkeys(step["stage"] for step in steps))
    assert stages == ["faces", "embedding", "fine-tuning", "validation", "export", "writing"]
    last = {step["stage"]: step for step in steps}
    assert all(step["done"] == step["total"] for step in last.values()), last
    assert last["faces"]["total"] == 16


def test_a_head_refit_on_a_bundles_backbone_keeps_that_backbone(
    run: TinyRun, tmp_path: Path
) -> None:
    data = copy_data(run, tmp_path / "data")
    extra = encode(character_picture(CHARACTERS[0], np.random.default_rng(77)))
    (data / "char_a" / "extra.png").write_bytes(extra)
    result = train(
        TrainOptions(data=data, out=tmp_path / "refit", backbone_from=run.bundle, progress=False)
    )
    first, refit = load_bundle(run.bundle), load_bundle(tmp_path / "refit")
    assert refit.backbone == first.backbone
    # the tuned features were not tuned on a refit's characters: familiarity on the whole
    assert first.head.gallery_dims is not None and refit.head.gallery_dims is None
    assert refit.head.gallery.shape[1] == refit.backbone.embedding_dim
    assert (tmp_path / "refit" / "model.tflite").read_bytes() == first.model_path.read_bytes()
    assert result.info["fine_tune"] == {"reused_backbone": first.backbone.sha256}
    assert result.info["training"]["per_label"]["char a"] == 6
    assert result.info["metrics"]["method"] == "held-out"


def test_a_head_refit_imports_no_tensorflow(run: TinyRun, tmp_path: Path) -> None:
    data = copy_data(run, tmp_path / "data")
    script = (
        "import sys\n"
        "from trainer.__main__ import main\n"
        f"code = main(['train', '--data', {str(data)!r}, '--out', {str(tmp_path / 'b')!r},\n"
        f"             '--backbone-from', {str(run.bundle)!r}, '--quiet', '--no-cache'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras'})\n"
        "print(code, loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_PATH"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout
    assert load_bundle(tmp_path / "b").backbone == load_bundle(run.bundle).backbone


def test_a_bundle_that_is_not_one_cannot_lend_its_backbone(run: TinyRun, tmp_path: Path) -> None:
    data = copy_data(run, tmp_path / "data")
    with pytest.raises(TrainingError, match="cannot reuse the backbone of"):
        train(
            TrainOptions(
                data=data, out=tmp_path / "b", backbone_from=tmp_path / "nothing", progress=False
            )
        )
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def test_a_single_character_is_refused(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", 3, characters=CHARACTERS[:1])
    with pytest.raises(TrainingError, match=r"at least two character folders .*found 1"):
        train(TrainOptions(data=data, out=tmp_path / "bundle", progress=False))
    assert not (tmp_path / "bundle").exists()


def test_a_missing_data_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no training folder at"):
        train(TrainOptions(data=tmp_path / "nowhere", out=tmp_path / "bundle", progress=False))


def test_a_character_with_one_usable_picture_is_refused(
    run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_data(run, tmp_path / "data")
    for path in sorted((data / "char_c").iterdir())[1:]:
        path.unlink()
    (data / "char_c" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    reuse_backbone(monkeypatch, run)
    options = TrainOptions(
        data=data, out=tmp_path / "bundle", cache_dir=run.cache, fine_tune=FEW, progress=False
    )
    with pytest.raises(TrainingError, match=r"at least two usable pictures; too few for: char c"):
        train(options)
    assert not (tmp_path / "bundle").exists()


def test_the_trainer_command_line_reports_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(tmp_path / "data", 2, characters=CHARACTERS[:1])
    code = trainer_main(["train", "--data", str(data), "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: ")


# ---------------------------------------------------------------------------------------------
# `python -m bot classify` on the bundle (the ARCHITECTURE.md contract)
# ---------------------------------------------------------------------------------------------


def classify(bundle: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CASCADE_PATH", "DISCORD_TOKEN", "DATABASE_URL"}
    }
    env["PYTHONPATH"] = str(REPO)
    env["LOG_LEVEL"] = "WARNING"
    return subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--model", str(bundle), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def classify_json(run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """``classify --json`` over a good picture, a text file, a missing file and another picture."""
    folder = tmp_path_factory.mktemp("classify")
    first = folder / "a.png"
    first.write_bytes(encode(character_picture(CHARACTERS[0], np.random.default_rng(3))))
    text = folder / "notes.png"
    text.write_text("not a picture\n")
    last = folder / "c.jpg"
    last.write_bytes(
        encode(character_picture(CHARACTERS[2], np.random.default_rng(4)), "JPEG", quality=90)
    )
    images = [first, text, folder / "missing.png", last]
    done = classify(run.bundle, "--json", *map(str, images), cwd=folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(images), done.stdout
    records = [json.loads(line) for line in lines]
    assert [record["image"] for record in records] == list(map(str, images))
    return records


def test_classify_json_names_each_face_with_ranked_scores(
    classify_json: list[dict[str, Any]],
) -> None:
    for record in (classify_json[0], classify_json[3]):
        assert set(record) == {"image", "faces", "ms"}
        assert type(record["ms"]) in (int, float) and math.isfinite(record["ms"])
        assert record["faces"]
        for face in record["faces"]:
            assert set(face) == {"box", "detector", "scores", "unsure"}
            assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
            assert isinstance(face["detector"], str) and face["detector"]
            assert isinstance(face["unsure"], bool)
            scores = [item["score"] for item in face["scores"]]
            assert sorted({item["label"] for item in face["scores"]}) == list(TINY_LABELS)
            assert scores == sorted(scores, reverse=True)
            assert sum(scores) == pytest.approx(1.0, abs=1e-4)


def test_classify_json_names_the_right_characters(classify_json: list[dict[str, Any]]) -> None:
    assert classify_json[0]["faces"][0]["scores"][0]["label"] == "char a"
    assert classify_json[3]["faces"][0]["scores"][0]["label"] == "char c"


def test_classify_json_reports_unreadable_images_and_goes_on(
    classify_json: list[dict[str, Any]],
) -> None:
    for record in classify_json[1:3]:
        assert set(record) == {"image", "error"}
        assert record["error"]
    assert "not a picture" in classify_json[1]["error"]


def test_classify_prints_the_seed_experiments_form(run: TinyRun, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(encode(character_picture(CHARACTERS[0], np.random.default_rng(3))))
    done = classify(run.bundle, str(image), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scores = re.findall(r"^\s*(char [abc]) \(score = (\d\.\d{5})\)$", done.stdout, re.MULTILINE)
    assert scores and scores[0][0] == "char a", done.stdout


# ---------------------------------------------------------------------------------------------
# Export: the .tflite computes what trainer.head.score validated (a toy backbone, no weights)
# ---------------------------------------------------------------------------------------------

TOY_CROP = CropSettings(margins=(1.0, 1.5), lift=0.1, size=8)


def toy_backbone() -> Any:
    """Mean colour of a crop: enough to tell solid-colour "characters" apart, instantly."""
    import keras

    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])


def toy_faces(colours: list[tuple[int, int, int]], per_label: int) -> tuple[np.ndarray, np.ndarray]:
    """Views (``N×2×8×8×3``) of solid-colour faces with some noise, and their label ids."""
    rng = np.random.default_rng(0)
    views = np.concatenate(
        [
            np.clip(np.array(colour) + rng.normal(0, 25, (per_label, 2, 8, 8, 3)), 0, 255)
            for colour in colours
        ]
    ).astype(np.uint8)
    return views, np.repeat(np.arange(len(colours)), per_label)


@pytest.fixture(scope="module")
def toy() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """A toy backbone, face views, their features and labels."""
    backbone = toy_backbone()
    views, labels = toy_faces([(230, 40, 40), (40, 200, 60), (50, 60, 220)], per_label=4)
    features = Embedder(backbone, "toy", TOY_CROP).embed(views)
    return backbone, views, features, labels


def test_the_exported_graph_gives_the_backbones_features(toy: tuple[Any, ...]) -> None:
    from trainer.export import BackboneModule

    backbone, views, _, _ = toy
    module = BackboneModule(backbone, TOY_CROP.size)
    for view in views[:, 0]:
        got = module.serve(view[np.newaxis].astype(np.float32)).numpy()
        want = backbone.predict_on_batch(view[np.newaxis].astype(np.float32))
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "float16", "int8"])
def test_the_converted_model_agrees_with_tensorflow(toy: tuple[Any, ...], precision: str) -> None:
    from trainer.export import BackboneModule, check_agreement, convert
    from trainer.head import fit_head

    backbone, views, features, labels = toy
    module = BackboneModule(backbone, TOY_CROP.size)
    calibration = views.reshape(-1, *views.shape[2:])
    model = convert(module, precision=precision, calibration=calibration)
    head = fit_head(features, labels)
    assert check_agreement(model, module, head, views[::3]) < (
        1e-5 if precision == "float32" else 0.02
    )


def test_an_int8_model_computes_in_int8() -> None:
    """int8 is not float16 under another name: the graph holds int8 tensors."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from trainer.export import BackboneModule, convert

    conv = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
    )
    views, _ = toy_faces([(230, 40, 40), (40, 200, 60)], per_label=4)
    calibration = views.reshape(-1, 8, 8, 3)
    dtypes = {}
    for precision in ("float16", "int8"):
        model = convert(BackboneModule(conv, 8), precision=precision, calibration=calibration)
        interpreter = Interpreter(model_content=model)
        dtypes[precision] = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.int8 in dtypes["int8"]
    assert np.int8 not in dtypes["float16"]


def test_int8_without_faces_to_calibrate_on_is_refused(toy: tuple[Any, ...]) -> None:
    from trainer.export import BackboneModule, convert

    module = BackboneModule(toy[0], TOY_CROP.size)
    with pytest.raises(ValueError, match="int8 needs face views"):
        convert(module, precision="int8")
    with pytest.raises(ValueError, match="unknown precision"):
        convert(module, precision="int4")


def test_a_model_that_disagrees_with_tensorflow_is_refused(toy: tuple[Any, ...]) -> None:
    import keras

    from trainer.export import BackboneModule, check_agreement, convert
    from trainer.head import fit_head

    backbone, views, features, labels = toy
    module = BackboneModule(backbone, TOY_CROP.size)
    # Another "backbone": the crop's colours swapped around, so other features come out.
    swapped = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Lambda(lambda x: x[..., ::-1]), backbone]
    )
    other = convert(BackboneModule(swapped, TOY_CROP.size), float16=False)
    with pytest.raises(TrainingError, match="the TFLite model disagrees with the trained model"):
        check_agreement(other, module, fit_head(features, labels), views[:2])
