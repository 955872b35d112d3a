"""The training report written beside the model: metrics per character and a confusion matrix."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def confusion_png(confusion: np.ndarray, labels: list[str] | tuple[str, ...]) -> bytes:
    """A PNG picture of the confusion matrix (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    size = max(4.0, 0.6 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    try:
        rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("validation confusion")
        for (row, col), count in np.ndenumerate(confusion):
            colour = "white" if rates[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", color=colour)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def markdown_report(info: dict[str, Any]) -> str:
    """A short human-readable summary of ``model.json``."""
    metrics = info["metrics"]
    training = info["training"]
    lines = [
        f"# Model {info['version']}",
        "",
        f"- created: {info['created_at']}",
        f"- backbone: {info['backbone']['name']} ({info['backbone']['input_size']} px)",
        f"- pictures: {training['pictures']} ({training['skipped']} skipped), "
        f"faces used: {training['faces']}",
        _validation_line(metrics),
        f"- unsure below {info['unsure']['threshold']:.4f} "
        f"(flags {info['unsure']['false_flag_rate']:.0%} of right validation answers)",
        "",
        "| character | pictures | precision | recall |",
        "|---|---|---|---|",
    ]
    for label, row in metrics["per_label"].items():
        lines.append(
            f"| {label} | {training['per_label'].get(label, row['support'])} "
            f"| {row['precision']:.3f} | {row['recall']:.3f} |"
        )
    if training["skipped_pictures"]:
        lines += ["", "Skipped pictures:", ""]
        lines += [f"- {line}" for line in training["skipped_pictures"]]
    lines += ["", "![confusion matrix](confusion.png)", ""]
    return "\n".join(lines)


def _validation_line(metrics: dict[str, Any]) -> str:
    if metrics.get("method") == "held-out":
        held = sum(row["support"] for row in metrics["per_label"].values())
        return f"- top-1 on {held} held-out pictures: {metrics['top1']:.3f}"
    return (
        f"- cross-validated top-1: {metrics['top1']:.3f} "
        f"({metrics['repeats']}× {metrics['folds']}-fold)"
    )
