"""Comparison tables: methods as rows, metrics as columns, value ± CI, notes naming backbones."""
from __future__ import annotations

import math

import pandas as pd

from ipbench.published import CITATIONS, PUBLISHED
from ipbench.tasks import metric_registry, value_infos

SIGNIFICANCE = 0.05


def long_table(records: list[dict], tests: dict[tuple[str, str], dict], paper: dict | None = None) -> pd.DataFrame:
    """One row per (method, metric): the CSV form, with full precision and the paired test.

    ``paper`` maps (method, metric) to the published value of the paper row the method reproduces.
    """
    rows = []
    for record in records:
        for metric, result in record["metrics"].items():
            test = tests.get((record["method"], metric), {})
            rows.append({
                "method": record["method"], "metric": metric, "value": result["value"],
                "ci95_low": result["ci95"][0], "ci95_high": result["ci95"][1],
                "n": result["n"], "n_items": result["n_items"],
                "backbone": result["backbone"], "convention": result["convention"],
                "vs_baseline_diff": test.get("mean_diff", math.nan),
                "vs_baseline_p": test.get("p_value", math.nan),
                "vs_baseline_test": test.get("test", ""),
                "paper_value": (paper or {}).get((record["method"], metric), math.nan),
                "warnings": "; ".join(result.get("warnings", [])),
            })
    return pd.DataFrame(rows)


def _cell(row) -> str:
    scale = value_infos()[row.metric].display_scale
    value, half = row.value * scale, (row.ci95_high - row.ci95_low) * scale / 2
    digits = 2 if abs(value) >= 10 else 3
    mark = "†" if row.vs_baseline_p < SIGNIFICANCE else ""
    return f"{value:.{digits}f} ± {half:.{digits}f}{mark}"


def with_published(wide: pd.DataFrame, long: pd.DataFrame, published: dict[str, dict[str, float]],
                   rows_of: dict[str, str]) -> pd.DataFrame:
    """``wide`` with a "(paper)" column after each metric the protocol publishes, and its published rows below.

    ``published`` is the protocol's paper row -> metric -> value; ``rows_of`` maps our methods to the
    paper row they reproduce, whose published value sits beside ours.
    """
    infos = value_infos()
    metrics = [m for m in infos if m in set(long.metric) and any(m in row for row in published.values())]
    out = wide.copy()
    for metric in metrics:
        label = next(c for c in wide.columns if c.startswith(infos[metric].label + " "))
        values = [published.get(rows_of.get(method), {}).get(metric) for method in wide.index]
        out.insert(list(out.columns).index(label) + 1, f"{label} (paper)",
                   [f"{v:.3f}" if v is not None else "–" for v in values])
    extra = pd.DataFrame("–", index=[f"paper: {row}" for row in published], columns=out.columns)
    for row, values in published.items():
        for metric in metrics:
            label = next(c for c in out.columns if c.startswith(infos[metric].label + " ") and c.endswith("(paper)"))
            if metric in values:
                extra.loc[f"paper: {row}", label] = f"{values[metric]:.3f}"
    extra["n"] = "–"
    return pd.concat([out, extra])


def wide_table(long: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Display form: rows = methods (config order), columns = metric labels with arrows."""
    infos = value_infos()
    metric_order = [m for m in infos if m in set(long.metric)]
    cells = long.assign(cell=[_cell(row) for row in long.itertuples()])
    wide = cells.pivot(index="method", columns="metric", values="cell").reindex(index=methods, columns=metric_order)
    n_images = long.groupby("method")["n"].max().reindex(methods)
    wide.insert(0, "n", n_images.astype("Int64"))
    wide.columns = ["n"] + [f"{infos[m].label} {'↑' if infos[m].higher_is_better else '↓'}" for m in metric_order]
    wide.index.name = "method"
    return wide.fillna("–")


def by_prefix(pairs: list[tuple[str, str]]) -> list[tuple[str, list[str], list[tuple[str, list[str]]]]]:
    """(text, label) pairs grouped so that each text is written once: a text that extends another (starts with
    it) is written as its remainder. Returns (root text, every label under it, [(remainder, its labels)])."""
    texts = sorted(dict.fromkeys(text for text, _ in pairs), key=len)
    root_of = {}
    for text in texts:
        root_of[text] = next((r for r in texts if r != text and root_of.get(r) == r and text.startswith(r)), text)
    groups: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for text, label in pairs:
        labels, extensions = groups.setdefault(root_of[text], ([], {}))
        labels.append(label)
        if text != root_of[text]:
            extensions.setdefault(text[len(root_of[text]):].lstrip(" ;,"), []).append(label)
    return [(root, labels, list(extensions.items())) for root, (labels, extensions) in groups.items()]


def notes(long: pd.DataFrame, suite: str, task: str, baseline: str) -> list[str]:
    """The table's notes: how to read it, what each metric is, then each backbone and convention once."""
    infos = value_infos()
    lines = [f"Suite `{suite}`, task `{task}`. Values ± half-width of a bootstrap 95% CI over items; "
             f"n = images per method. † = differs from the baseline `{baseline}` at p < {SIGNIFICANCE} "
             "(Wilcoxon signed-rank over items for per-item metrics, paired bootstrap over items for FID/KID)."]
    shown = [m for m in infos if m in set(long.metric)]
    lines.append("Metrics: " + "; ".join(f"{infos[m].label}: {infos[m].description}" for m in shown) + ".")
    first = long.drop_duplicates("metric").set_index("metric")
    label_of = {infos[m].label: m for m in shown}
    order = [infos[m].label for m in shown]

    def named(labels: list[str]) -> str:  # three or more adjacent columns as a range
        at = [order.index(label) for label in labels]
        adjacent = len(labels) > 2 and at == list(range(at[0], at[0] + len(at)))
        return f"{labels[0]} … {labels[-1]}" if adjacent else ", ".join(labels)

    for backbone, labels, extra in by_prefix([(first.loc[m, "backbone"], infos[m].label) for m in shown]):
        line = f"{named(labels)}: backbone {backbone}" + "".join(
            f" ({named(sub)}: also {rest})" for rest, sub in extra)
        conventions = by_prefix([(first.loc[label_of[label], "convention"], label) for label in labels])
        for convention, sub, more in conventions:
            line += "; " + (f"{named(sub)}: " if len(conventions) > 1 else "") + convention
            line += "".join(f"; {named(labs)} also: {rest}" for rest, labs in more)
        lines.append(line + ".")
    return lines + _warnings(long, infos)


def _warnings(long: pd.DataFrame, infos: dict) -> list[str]:
    """A note per reason to read values with care (too few images or items, what evaluation said), naming
    the values and the methods it concerns."""
    of_value = {value: metric for metric in metric_registry().values() for value in metric.values}
    methods_of: dict[tuple[str, str], list[str]] = {}
    for row in long.itertuples():
        small = of_value[row.metric].small_n_warning(row.n, getattr(row, "n_items", row.n))
        said = getattr(row, "warnings", None)
        for reason in filter(None, [small and f"small n: {small}", *(said.split("; ") if isinstance(said, str) else [])]):
            methods_of.setdefault((reason, infos[row.metric].label), []).append(row.method)
    labels_of: dict[tuple[str, str], list[str]] = {}
    for (reason, label), methods in methods_of.items():
        labels_of.setdefault((reason, ", ".join(methods)), []).append(label)
    return [f"Warning, {', '.join(labels)}: {reason} ({methods})." for (reason, methods), labels in labels_of.items()]


def display(long: pd.DataFrame, methods: list[str], suite: str, task: str, baseline: str,
            protocol: str | None = None, published_rows: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The display table and its notes, with the published rows and "(paper)" columns of ``protocol``.

    ``published_rows`` maps our methods to the paper row each reproduces (config key methods.<m>.published).
    """
    published = PUBLISHED.get(protocol, {})
    rows_of = {method: row for method, row in (published_rows or {}).items() if row in published}
    wide, note_lines = wide_table(long, methods), notes(long, suite, task, baseline)
    if published:
        wide = with_published(wide, long, published, rows_of)
        note_lines.append(f"(paper) columns and `paper:` rows: published values, {CITATIONS[protocol]}")
    return wide, note_lines


def to_markdown(wide: pd.DataFrame, note_lines: list[str]) -> str:
    return wide.to_markdown() + "\n\n" + "\n".join(f"- {line}" for line in note_lines) + "\n"


# LaTeX's special characters escaped (a bare % comments out the rest of the caption), the symbols as math.
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "$": r"\$",
          "±": r"$\pm$", "†": r"$^\dagger$", "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def _latex(text) -> str:
    return "".join(_LATEX.get(char, char) for char in str(text))


def to_latex(wide: pd.DataFrame, note_lines: list[str], task: str) -> str:
    latex_ready = wide.map(_latex)
    latex_ready.index = [_latex(name) for name in wide.index]
    latex_ready.index.name = wide.index.name
    latex_ready.columns = [_latex(c) for c in wide.columns]
    body = latex_ready.to_latex(escape=False, column_format="l" + "r" * len(wide.columns))
    return ("\\begin{table}[t]\n\\centering\n" + body
            + f"\\caption{{{_latex(' '.join(note_lines))}}}\n\\label{{tab:ipbench-{task}}}\n\\end{{table}}\n")


def to_html(wide: pd.DataFrame, note_lines: list[str]) -> str:
    """A standalone HTML page: the table, then its notes (the report embeds it)."""
    import html

    items = "".join(f"<li>{html.escape(line)}</li>" for line in note_lines)
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>table{border-collapse:collapse;'
            'font:13px sans-serif}th,td{padding:2px 8px;border-bottom:1px solid #ccc;text-align:right}'
            'th:first-child,td:first-child{text-align:left}li{font:12px sans-serif}</style></head><body>\n'
            + wide.to_html(classes="ipbench-table") + f"\n<ul>{items}</ul>\n</body></html>\n")
