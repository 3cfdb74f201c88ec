"""A training history as a figure: losses against steps, and validation numbers where recorded."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SKIP = {"step", "lr", "logit_scale"}


def plot_history(history: list[dict], path, title: str = "") -> None:
    """One panel of the losses (log scale) and, if any, one of every other series (validation, accuracies)."""
    series = sorted({key for row in history for key in row if key not in SKIP})
    losses = [key for key in series if "loss" in key]
    others = [key for key in series if key not in losses]
    panels = [("loss", losses)] + ([("validation and monitors", others)] if others else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.0), squeeze=False)
    for ax, (label, keys) in zip(axes[0], panels):
        for key in keys:
            points = [(row["step"], row[key]) for row in history if key in row and row[key] is not None]
            if points:
                ax.plot(*zip(*points), label=key, linewidth=1)
        if label == "loss" and all(row.get(k, 1) > 0 for row in history for k in keys if k in row):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        if keys:
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
