"""The backbone at serving time: a face's crop views in, one embedding out (LiteRT).

The backbone ``.tflite`` takes one view (``1×S×S×3`` raw RGB, float32 in [0, 255]) and
returns its pooled features (``1×F``). A face's embedding is every view's features scaled to
unit length, concatenated, and scaled to unit length again (``V·F`` long). The trainer
embeds its pictures with the same rule, so training and serving features match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.errors import BundleError


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (along the last axis)."""
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8)


def combine_views(pooled: np.ndarray) -> np.ndarray:
    """``...×V×F`` per-view features → ``...×(V·F)``: each view unit-length, then the whole."""
    per_view = unit(np.asarray(pooled, np.float32))
    return unit(per_view.reshape(*per_view.shape[:-2], -1))


class FaceEmbedder:
    """Runs a backbone ``.tflite`` with LiteRT; not thread-safe (one per worker thread)."""

    def __init__(
        self, model: Path | bytes, *, input_size: int, feature_dim: int, num_threads: int = 1
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        name = str(model) if isinstance(model, Path) else "the backbone"
        try:
            if isinstance(model, Path):
                self._interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
            else:
                self._interpreter = Interpreter(model_content=model, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{name} is not a model LiteRT can run: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        expected_in = (1, input_size, input_size, 3)
        if len(inputs) != 1 or tuple(inputs[0]["shape"]) != expected_in:
            raise BundleError(
                f"{name} takes input {[tuple(d['shape']) for d in inputs]}, "
                f"but its description says {expected_in}"
            )
        if len(outputs) != 1 or tuple(outputs[0]["shape"]) != (1, feature_dim):
            raise BundleError(
                f"{name} gives {[tuple(d['shape']) for d in outputs]}, "
                f"but its description says (1, {feature_dim})"
            )
        self.input_size = input_size
        self.feature_dim = feature_dim
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]

    def view_features(self, views: np.ndarray) -> np.ndarray:
        """Pooled features of each view: ``V×S×S×3`` uint8 → ``V×F`` float32."""
        out = np.empty((len(views), self.feature_dim), np.float32)
        for i, view in enumerate(views):
            self._interpreter.set_tensor(self._input, view[np.newaxis].astype(np.float32))
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output)[0]
        return out

    def embed(self, views: np.ndarray) -> np.ndarray:
        """One face's embedding (``V·F``) from its views (``V×S×S×3`` uint8)."""
        return combine_views(self.view_features(views))
