"""Paper figures: an image grid (condition | methods) and metric bars with CIs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ipbench.tasks import value_infos  # noqa: E402


def image_grid(columns: list[tuple[str, list[np.ndarray]]], path, cell_inches: float = 1.3,
               row_labels: list[str] | None = None) -> None:
    """One column per source (condition first, then methods), one row per item.

    ``row_labels`` (e.g. the captions of a text-only task) fill a first text column.
    """
    import textwrap

    n_rows = max(len(images) for _, images in columns)
    offset = 1 if row_labels else 0
    fig, axes = plt.subplots(n_rows, len(columns) + offset, squeeze=False,
                             figsize=(cell_inches * (len(columns) + offset), cell_inches * n_rows))
    for row, label in enumerate(row_labels or []):
        axes[row, 0].axis("off")
        axes[row, 0].text(0, 0.5, textwrap.fill(label, 24), fontsize=6, va="center", transform=axes[row, 0].transAxes)
    for col, (label, images) in enumerate(columns, start=offset):
        axes[0, col].set_title(label, fontsize=8)
        for row in range(n_rows):
            axes[row, col].axis("off")
            if row < len(images):
                axes[row, col].imshow(images[row], interpolation="nearest")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def metric_bars(long: pd.DataFrame, methods: list[str], path) -> None:
    """One panel per metric: value with its 95% CI as an error bar, methods in config order."""
    metric_names = [m for m in value_infos() if m in set(long.metric)]
    n_cols = min(5, len(metric_names))
    n_rows = -(-len(metric_names) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, figsize=(2.6 * n_cols, 2.6 * n_rows))
    for ax in axes.flat[len(metric_names):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metric_names):
        rows = long[long.metric == metric].set_index("method").reindex(methods).dropna(subset=["value"])
        scale = value_infos()[metric].display_scale
        values = rows.value.to_numpy() * scale
        errors = np.abs(np.stack([values - rows.ci95_low.to_numpy() * scale,
                                  rows.ci95_high.to_numpy() * scale - values]))
        ax.bar(range(len(rows)), values, yerr=errors, capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(rows)), rows.index, rotation=45, ha="right", fontsize=8)
        arrow = "↑" if value_infos()[metric].higher_is_better else "↓"
        ax.set_title(f"{value_infos()[metric].label} {arrow}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def tradeoff_scatter(long: pd.DataFrame, path, x: str = "clip_t", y: str = "clip_i") -> None:
    """CLIP-T against CLIP-I per method with CI whiskers, as in the IP-Adapter paper's comparison."""
    wide = long.set_index(["method", "metric"])
    methods = [m for m in long.method.unique() if (m, x) in wide.index and (m, y) in wide.index]
    fig, ax = plt.subplots(figsize=(4, 4))
    for method in methods:
        px, py = wide.loc[(method, x)], wide.loc[(method, y)]
        ax.errorbar(px.value, py.value, xerr=[[px.value - px.ci95_low], [px.ci95_high - px.value]],
                    yerr=[[py.value - py.ci95_low], [py.ci95_high - py.value]], fmt="o", capsize=3)
        ax.annotate(method, (px.value, py.value), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(f"{value_infos()[x].label} ↑")
    ax.set_ylabel(f"{value_infos()[y].label} ↑")
    ax.set_title(str(wide.loc[(methods[0], x)].backbone) if methods else "", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def sweep_plot(long: pd.DataFrame, param: str, metrics: list[str], path) -> None:
    """One panel per metric against a swept parameter (e.g. FID and accuracy against CFG), 95% CI whiskers."""
    metrics = [m for m in metrics if m in set(long.metric)]
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, figsize=(2.8 * len(metrics), 2.6))
    for ax, metric in zip(axes.flat, metrics):
        rows = long[long.metric == metric].sort_values("param_value")
        scale = value_infos()[metric].display_scale
        values = rows.value.to_numpy() * scale
        errors = np.abs(np.stack([values - rows.ci95_low.to_numpy() * scale,
                                  rows.ci95_high.to_numpy() * scale - values]))
        ax.errorbar(rows.param_value, values, yerr=errors, fmt="o-", capsize=3, color="#4c72b0")
        arrow = "↑" if value_infos()[metric].higher_is_better else "↓"
        ax.set_title(f"{value_infos()[metric].label} {arrow}", fontsize=9)
        ax.set_xlabel(param, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
