"""``install-base``: the operator's bundle into the database, its pictures imported once."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bot.install import FACES_FILE, install_base
from bot.model_store import ModelStore
from bot.refit import features_from_bytes
from bot.storage.db import Storage
from bot.storage.schema import ExampleSource, TrainingExample
from bot.storage.scope import Scope
from bot.vision.bundle import load_bundle
from bot.vision.cascade import bundled_cascade
from bot.vision.embedder import FaceEmbedder
from bot.vision.examples import embed_both_ways, example_views
from tests.pictures import TINY_LABELS, TINY_SKIPPED, tiny_training_run

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    run = tiny_training_run(tmp_path_factory)
    return run.bundle, run.data


async def test_the_base_model_serves_every_server_once_installed(
    storage: Storage, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle, _ = tiny
    store = ModelStore(storage, tmp_path / "cache")
    assert await store.serving(1234) is None

    result = await install_base(storage, store, bundle, None)

    for guild in (1234, None):
        model = await store.serving(guild)
        assert model is not None
        assert (model.version, model.scope, model.labels) == (
            result.version,
            Scope.BASE,
            TINY_LABELS,
        )
    assert result.imported == 0


async def test_the_training_pictures_are_imported_with_where_they_came_from(
    storage: Storage, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle, data = tiny
    store = ModelStore(storage, tmp_path / "cache")

    result = await install_base(storage, store, bundle, data, cascade_path=bundled_cascade())

    async with storage.engine.connect() as connection:
        rows = (await connection.execute(select(TrainingExample))).all()
    assert len(rows) == result.imported > 0
    assert {row.source for row in rows} == {ExampleSource.IMPORT}
    assert {row.scope_id for row in rows} == {Scope.BASE.id}
    for row in rows:
        picture = (data / row.origin).read_bytes()
        assert row.picture_sha256 == hashlib.sha256(picture).hexdigest()
    skipped = {line.split(":")[0] for line in result.skipped}
    assert set(TINY_SKIPPED) <= skipped
    assert result.imported + len(result.skipped) == len([p for p in data.rglob("*") if p.is_file()])


async def test_an_imported_embedding_is_the_backbones_on_the_stored_crop(
    storage: Storage, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle_dir, data = tiny
    store = ModelStore(storage, tmp_path / "cache")
    await install_base(storage, store, bundle_dir, data, cascade_path=bundled_cascade())
    bundle = load_bundle(bundle_dir)
    (ref, *_) = await storage.examples.training_refs(Scope.BASE)

    stored = await storage.examples.embeddings(bundle.backbone.sha256, [ref.id])
    crop = (await storage.examples.crops([ref.id]))[ref.id]

    embedder = FaceEmbedder(
        bundle.model_path,
        input_size=bundle.backbone.input_size,
        feature_dim=bundle.backbone.feature_dim,
    )
    expected = embed_both_ways(embedder, example_views(crop, bundle.crop))
    got = features_from_bytes(stored[ref.id], bundle.backbone.embedding_dim)
    assert np.allclose(got, expected, atol=1e-5)


async def test_installing_again_imports_nothing_twice(
    storage: Storage, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle, data = tiny
    store = ModelStore(storage, tmp_path / "cache")
    first = await install_base(storage, store, bundle, data, cascade_path=bundled_cascade())

    again = await install_base(storage, store, bundle, data, cascade_path=bundled_cascade())

    assert (again.imported, again.already_there) == (0, first.imported)
    assert len(await storage.examples.training_refs(Scope.BASE)) == first.imported
    active = await storage.model_versions.active(Scope.BASE)
    assert active is not None and active.version == first.version


async def test_a_damaged_bundle_is_refused_and_nothing_installed(
    storage: Storage, tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle, _ = tiny
    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged)
    (damaged / "model.tflite").write_bytes(b"not a model")

    with pytest.raises(Exception, match="checksum"):
        await install_base(storage, ModelStore(storage, tmp_path / "cache"), damaged, None)

    assert await storage.model_versions.active(Scope.BASE) is None


def test_the_trainer_records_which_face_of_each_picture_it_learnt_from(
    tiny: tuple[Path, Path],
) -> None:
    bundle, data = tiny
    entries = json.loads((bundle / FACES_FILE).read_text("utf-8"))
    info = json.loads((bundle / "model.json").read_text("utf-8"))

    assert len(entries) == info["training"]["faces"]
    for entry in entries:
        assert (data / entry["file"]).is_file()
        assert entry["label"] in TINY_LABELS
        assert entry["face"] >= 0 and entry["detector"]


def test_the_command_installs_and_says_what_it_imported(
    tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    bundle, data = tiny
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path / "data"),
        "ENV_FILE": "/dev/null",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    command = [sys.executable, "-m", "bot", "install-base", str(bundle), "--data", str(data)]

    done = subprocess.run(
        command, cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    version = json.loads((bundle / "model.json").read_text("utf-8"))["version"]
    assert done.stdout.startswith(f"base model {version} installed")
    assert "3 characters" in done.stdout and "training pictures imported" in done.stdout
    assert "skipped char_a/notes.png" in done.stdout
