"""Paper figures, one style: qualitative grids, metric bars, the CLIP-T/CLIP-I trade-off, sweeps, a summary.

Every figure is drawn from cached tables and image sets and saved as vector PDF and PNG (``save``).
Each method keeps one colour in every figure (``method_colours``); every value carries its 95% CI.
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ipbench.io import atomic_write_bytes  # noqa: E402
from ipbench.tasks import value_infos  # noqa: E402

# Type 42 embeds TrueType fonts in the PDF (conference templates reject Type 3); a fixed date keeps PDFs stable.
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.alpha": 0.3, "grid.linewidth": 0.5, "pdf.fonttype": 42, "savefig.dpi": 200,
         "savefig.bbox": "tight", "savefig.pad_inches": 0.02}
FORMATS = ("pdf", "png")


def method_colours(methods: list[str]) -> dict[str, tuple]:
    """One colour per method (config order), the same in every figure of a suite."""
    palette = plt.get_cmap("tab10").colors
    return {method: palette[k % len(palette)] for k, method in enumerate(methods)}


def save(fig, stem: str | Path) -> list[Path]:
    """``stem``.pdf and ``stem``.png, each written whole or not at all."""
    paths = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata={"CreationDate": None} if fmt == "pdf" else None)
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def _arrow(metric: str) -> str:
    return "↑" if value_infos()[metric].higher_is_better else "↓"


def _scaled(rows: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Values and their CI whiskers (2 x n, below and above) at the metric's display scale."""
    scale = value_infos()[metric].display_scale
    values = rows.value.to_numpy() * scale
    return values, np.abs(np.stack([values - rows.ci95_low.to_numpy() * scale,
                                    rows.ci95_high.to_numpy() * scale - values]))


def _column_label(label: str, width: int = 11) -> str:
    """A method name broken after underscores into lines of about ``width`` characters (one cell wide)."""
    lines = [""]
    for part in label.replace("_", "_\0").split("\0"):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def condition_grid(prompts: list[str], conditions: list[list[np.ndarray]],
                   columns: list[tuple[str, list[np.ndarray]]], stem, cell_inches: float = 0.8) -> list[Path]:
    """One row per item: its prompt text, every condition image (all K references), then one column per source.

    ``columns`` are (label, one image per item), methods first and the oracle last.
    """
    with plt.style.context(STYLE):
        n_refs = max((len(images) for images in conditions), default=0)
        text = any(prompts)
        widths = [2.2] * text + [1] * n_refs + [1] * len(columns)
        fig, axes = plt.subplots(len(prompts), len(widths), squeeze=False, gridspec_kw={"width_ratios": widths},
                                 figsize=(cell_inches * sum(widths), cell_inches * len(prompts)))
        for ax in axes.flat:
            ax.axis("off")
        titles = ["prompt"] * text + [f"ref {k + 1}" if n_refs > 1 else "image prompt" for k in range(n_refs)]
        for col, title in enumerate(titles + [_column_label(label) for label, _ in columns]):
            axes[0, col].set_title(title, fontsize=7, fontweight="bold" if col >= len(titles) else "normal")
        for row, (prompt, refs) in enumerate(zip(prompts, conditions)):
            if text:
                axes[row, 0].text(0, 0.5, textwrap.fill(prompt or "(no text)", 26), fontsize=6, va="center",
                                  transform=axes[row, 0].transAxes)
            for k, image in enumerate(refs):
                axes[row, text + k].imshow(image, interpolation="nearest")
            for col, (_, images) in enumerate(columns, start=text + n_refs):
                axes[row, col].imshow(images[row], interpolation="nearest")
        fig.subplots_adjust(wspace=0.05, hspace=0.05)
        return save(fig, stem)


def metric_bars(long: pd.DataFrame, methods: list[str], stem) -> list[Path]:
    """One panel per metric: value with its 95% CI as an error bar, methods in config order."""
    metric_names = [m for m in value_infos() if m in set(long.metric)]
    colours = method_colours(methods)
    n_cols = min(5, len(metric_names))
    n_rows = -(-len(metric_names) // n_cols)
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, figsize=(1.7 * n_cols, 1.8 * n_rows))
        for ax in axes.flat[len(metric_names):]:
            ax.axis("off")
        for ax, metric in zip(axes.flat, metric_names):
            rows = long[long.metric == metric].set_index("method").reindex(methods).dropna(subset=["value"])
            values, errors = _scaled(rows, metric)
            ax.bar(range(len(rows)), values, yerr=errors, capsize=2, color=[colours[m] for m in rows.index],
                   error_kw={"linewidth": 0.8})
            ax.set_xticks(range(len(rows)), rows.index, rotation=45, ha="right")
            ax.set_title(f"{value_infos()[metric].label} {_arrow(metric)}")
            ax.grid(axis="x", visible=False)
        fig.tight_layout()
        return save(fig, stem)


def _errorbar(ax, px, py, **kwargs):
    return ax.errorbar(px.value, py.value, xerr=[[px.value - px.ci95_low], [px.ci95_high - px.value]],
                       yerr=[[py.value - py.ci95_low], [py.ci95_high - py.value]], capsize=2, elinewidth=0.8,
                       **kwargs)


def tradeoff_scatter(long: pd.DataFrame, methods: list[str], stem, sweeps: pd.DataFrame | None = None,
                     x: str = "clip_t", y: str = "clip_i") -> list[Path]:
    """CLIP-T against CLIP-I per method with CI whiskers (the IP-Adapter paper's comparison).

    ``sweeps`` (the long sweep tables: sweep, method, param, param_value, metric, value, CI) draws each
    sweep of a method as a curve through its values, labelled with the parameter value.
    """
    wide = long.set_index(["method", "metric"])
    shown = [m for m in methods if (m, x) in wide.index and (m, y) in wide.index]
    colours = method_colours(methods)
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(3.2, 3.0))
        for name, sweep in (sweeps.groupby("sweep", sort=False) if sweeps is not None else []):
            points = sweep.set_index(["param_value", "metric"]).sort_index()
            values = sorted(sweep.param_value.unique())
            xs = [points.loc[(v, x)].value for v in values]
            ys = [points.loc[(v, y)].value for v in values]
            colour = colours.get(sweep.method.iloc[0], "grey")
            ax.plot(xs, ys, "--", color=colour, linewidth=0.8, label=f"{sweep.method.iloc[0]}: {sweep.param.iloc[0]}")
            for value in values:
                _errorbar(ax, points.loc[(value, x)], points.loc[(value, y)], fmt=".", color=colour)
                ax.annotate(f"{value:g}", (points.loc[(value, x)].value, points.loc[(value, y)].value),
                            textcoords="offset points", xytext=(3, -8), fontsize=6, color=colour)
        for method in shown:
            _errorbar(ax, wide.loc[(method, x)], wide.loc[(method, y)], fmt="o", color=colours[method],
                      markersize=4)
            ax.annotate(method, (wide.loc[(method, x)].value, wide.loc[(method, y)].value),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
        if sweeps is not None and len(sweeps):
            ax.legend(loc="lower left", frameon=False)
        ax.set_xlabel(f"{value_infos()[x].label} {_arrow(x)}")
        ax.set_ylabel(f"{value_infos()[y].label} {_arrow(y)}")
        fig.tight_layout()
        return save(fig, stem)


def sweep_plot(long: pd.DataFrame, param: str, metrics: list[str], stem, colour=None) -> list[Path]:
    """One panel per metric against a swept parameter (e.g. FID and accuracy against CFG), 95% CI whiskers."""
    metrics = [m for m in metrics if m in set(long.metric)]
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(metrics), squeeze=False, figsize=(1.9 * len(metrics), 1.8))
        for ax, metric in zip(axes.flat, metrics):
            rows = long[long.metric == metric].sort_values("param_value")
            values, errors = _scaled(rows, metric)
            ax.errorbar(rows.param_value, values, yerr=errors, fmt="o-", capsize=2, color=colour, markersize=3)
            ax.set_title(f"{value_infos()[metric].label} {_arrow(metric)}")
            ax.set_xlabel(param)
        fig.tight_layout()
        return save(fig, stem)


def ranked(long: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of ``metric``, best method first (by the metric's direction)."""
    rows = long[long.metric == metric].dropna(subset=["value"])
    return rows.sort_values("value", ascending=not value_infos()[metric].higher_is_better, kind="stable")


def summary(panels: list[tuple[str, str, pd.DataFrame]], methods: list[str], stem) -> list[Path]:
    """One panel per task: its headline metric, methods ranked best first, with 95% CIs.

    ``panels`` are (task, headline value name, the task's long table); ``methods`` fixes the colours.
    """
    colours = method_colours(methods)
    with plt.style.context(STYLE):
        fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(2.3 * len(panels), 1.9))
        for ax, (task, metric, long) in zip(axes.flat, panels):
            rows = ranked(long, metric)
            values, errors = _scaled(rows, metric)
            positions = np.arange(len(rows))[::-1]  # best at the top
            ax.barh(positions, values, xerr=errors, capsize=2, color=[colours.get(m, "grey") for m in rows.method],
                    error_kw={"linewidth": 0.8})
            ax.set_yticks(positions, rows.method)
            ax.set_title(f"{task}: {value_infos()[metric].label} {_arrow(metric)}")
            ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return save(fig, stem)
