"""Captions of the paper figures and tables: what each shows, then the protocol behind its numbers.

The protocol is n (items, samples, images per method, from the table), each method's settings (steps, CFG and
the rest, as configured over the declared defaults) and each metric backbone as recorded with the values.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ipbench.tables import by_prefix
from ipbench.tasks import TASKS, value_infos


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if value == "" else str(value)


def _settings(settings: dict) -> str:
    return ", ".join(f"{key} {_value(value)}" for key, value in settings.items()) or "no parameters"


def protocol(long: pd.DataFrame | None, settings: dict[str, dict], samples: dict[str, int]) -> str:
    """n, every method's settings and samples per item, and the backbones recorded in ``long`` (a table CSV)."""
    parts = []
    if long is not None and len(long):
        images = long.groupby("method")["n"].max()
        parts.append(f"n = {int(long.n_items.max())} items; images per method: "
                     + ", ".join(f"{m} {int(images[m])}" for m in settings if m in images))
    parts.append("Settings: " + "; ".join(f"{m} ({samples[m]} per item; {_settings(s)})" for m, s in settings.items()))
    if long is not None and len(long):
        recorded = long.drop_duplicates("metric").set_index("metric")
        shown = [m for m in value_infos() if m in recorded.index]
        parts.append("Backbones: " + "; ".join(
            f"{', '.join(labels)}: {root}" for root, labels, _ in
            by_prefix([(recorded.loc[m, "backbone"], value_infos()[m].label) for m in shown])))
    return "Protocol: " + ". ".join(parts) + "."


def read_table(path: str | Path) -> pd.DataFrame | None:
    """A table CSV, or None while it does not exist yet (captions are also built when the DAG is planned)."""
    return pd.read_csv(path) if Path(path).exists() else None


SHOWS = {
    "grid": "Qualitative samples for task `{task}` ({description}). Each row is one item: its text prompt and "
            "every image prompt (all K references), then the first sample of each method, the oracle (the exact "
            "ground-truth render) last.",
    "bars": "Every metric of task `{task}` per method: the value with its bootstrap 95% CI over items "
            "(↑ higher is better, ↓ lower).",
    "tradeoff": "CLIP-T against CLIP-I per method on task `{task}`, with bootstrap 95% CIs on both axes (the "
                "IP-Adapter paper's trade-off: text alignment against image-prompt similarity). A configured sweep "
                "of a method is a dashed curve through its values, each point labelled with the parameter value.",
    "table": "Comparison table of task `{task}`: methods as rows, metrics as columns, value ± half-width of the "
             "bootstrap 95% CI over items; the notes name each backbone and convention.",
}


def caption(kind: str, task: str, long: pd.DataFrame | None, settings: dict[str, dict],
            samples: dict[str, int]) -> str:
    return SHOWS[kind].format(task=task, description=TASKS[task].description) + " " + protocol(
        long, settings, samples)


def sweep_caption(name: str, spec: dict, long: pd.DataFrame | None, settings: dict, samples: int) -> str:
    values = ", ".join(_value(v) for v in spec["values"])
    shows = (f"Sweep `{name}`: `{spec['method']}` on task `{spec['task']}` at {spec['param']} = {values}; each "
             "panel one metric against the value, with bootstrap 95% CIs over items.")
    n = f"n = {int(long.n.max())} images per value; " if long is not None and len(long) else ""
    return f"{shows} Protocol: {n}settings: {samples} per item; {_settings(settings)} (the swept value replaces " \
           f"{spec['param']})."


def summary_caption(headlines: dict[str, str], tables: dict[str, pd.DataFrame | None]) -> str:
    infos = value_infos()
    heads = "; ".join(f"{task}: {infos[metric].label} ({'higher' if infos[metric].higher_is_better else 'lower'} "
                      "is better)" for task, metric in headlines.items())
    n = "; ".join(f"{task} {int(t.n_items.max())} items" for task, t in tables.items() if t is not None)
    return ("Summary: one panel per task, its headline metric per method, ranked best first, with bootstrap 95% "
            f"CIs over items. Headlines: {heads}. Protocol: n = {n or 'see each task'}; each task's figures give "
            "the methods' settings and backbones.")
