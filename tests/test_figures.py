"""Paper figures and table notes: layouts follow their inputs, sweeps are curves, rankings follow directions."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipbench import captions, figures, tables


def _size(path):
    with Image.open(path) as image:
        return image.size


@pytest.fixture
def drawn(monkeypatch):
    """The figures a call draws, kept open instead of saved."""
    kept = []
    monkeypatch.setattr(figures, "save", lambda fig, stem: kept.append(fig))
    return kept


def _long(rows):
    return pd.DataFrame([{"method": m, "metric": k, "value": v, "ci95_low": v - 0.01, "ci95_high": v + 0.01,
                          "n": 8, "n_items": 4, "backbone": b, "convention": c, "vs_baseline_p": float("nan")}
                         for m, k, v, b, c in rows])


def test_grid_shows_every_image_prompt_and_the_prompt_text(tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    methods = [("a", [image] * 2), ("oracle", [image] * 2)]
    one = figures.condition_grid(["", ""], [[image], [image]], methods, tmp_path / "one")
    four = figures.condition_grid(["a red blob", "a blob on sand"], [[image] * 4] * 2, methods, tmp_path / "four")
    assert [p.suffix for p in one] == [".pdf", ".png"]
    assert (tmp_path / "one.pdf").read_bytes().startswith(b"%PDF")
    # four references and a text column: 2 + 4 + 2.2 cells wide against 2 + 1
    assert _size(four[1])[0] > 2.3 * _size(one[1])[0]
    assert _size(four[1])[1] == pytest.approx(_size(one[1])[1], rel=0.1)


def test_sweep_plot_has_one_panel_per_metric_present(tmp_path):
    rows = [{"param_value": value, "metric": metric, "value": v, "ci95_low": v - 0.1, "ci95_high": v + 0.1}
            for value in (1.0, 3.0, 7.5) for metric, v in (("fid", 10 + value), ("all_correct", value / 10))]
    long = pd.DataFrame(rows)
    two = figures.sweep_plot(long, "guidance_scale", ["fid", "all_correct"], tmp_path / "two")[1]
    absent = figures.sweep_plot(long, "guidance_scale", ["fid", "all_correct", "kid"], tmp_path / "absent_kid")[1]
    one = figures.sweep_plot(long, "guidance_scale", ["fid"], tmp_path / "one")[1]
    assert _size(absent) == _size(two)  # no empty panel for kid
    assert _size(two)[0] > 1.8 * _size(one)[0]


def test_tradeoff_draws_a_sweep_as_a_curve_in_parameter_order(drawn):
    long = _long([(m, k, v, "clip", "cosine") for m, (t, i) in {"a": (0.3, 0.8), "b": (0.25, 0.9)}.items()
                  for k, v in (("clip_t", t), ("clip_i", i))])
    sweep = _long([("a", k, v, "clip", "cosine") for value, t, i in ((5.0, 0.31, 0.7), (1.0, 0.2, 0.85))
                   for k, v in (("clip_t", t), ("clip_i", i))]).assign(sweep="scale", param="scale")
    sweep["param_value"] = [5.0, 5.0, 1.0, 1.0]
    figures.tradeoff_scatter(long, ["a", "b"], "unused", sweeps=sweep)
    curves = [line for line in drawn[0].axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(curves) == 1
    assert list(curves[0].get_xdata()) == [0.2, 0.31] and list(curves[0].get_ydata()) == [0.85, 0.7]


def test_summary_ranks_each_task_by_its_headline_direction(drawn):
    fid = _long([("a", "fid", 30.0, "inception", "x"), ("b", "fid", 10.0, "inception", "x")])
    clip = _long([("a", "clip_i", 0.9, "clip", "x"), ("b", "clip_i", 0.5, "clip", "x")])
    figures.summary([("text2image", "fid", fid), ("variation", "clip_i", clip)], ["a", "b"], "unused")
    first, second = drawn[0].axes

    def top_down(ax):  # labels by height on the page
        ticks = sorted(zip(ax.get_yticks(), [label.get_text() for label in ax.get_yticklabels()]), reverse=True)
        return [label for _, label in ticks]

    assert top_down(first) == ["b", "a"]  # lower FID is better
    assert top_down(second) == ["a", "b"]
    assert "FID" in first.get_title() and "CLIP-I" in second.get_title()


def test_notes_name_each_backbone_and_convention_once():
    analyzers, cnn = "mini-world analyzers", "mini-world analyzers; shape by the CNN"
    long = _long([("a", "clip_i", 0.8, "hf-clip:judge", "raw cosine; mean over the image prompts"),
                  ("a", "clip_t", 0.3, "hf-clip:judge", "raw cosine"),
                  ("a", "acc_background", 1.0, cnn, "against the truth"),
                  ("a", "acc_position", 1.0, cnn, "against the truth"),
                  ("a", "acc_size", 1.0, cnn, "against the truth"),
                  ("a", "subject_iou", 0.9, analyzers, "against each image prompt")])
    text = "\n".join(tables.notes(long, "s", "variation", "a")[2:])
    assert text.count("hf-clip:judge") == 1 and text.count("raw cosine") == 1
    assert text.count("mini-world analyzers") == 1 and text.count("against the truth") == 1
    assert "CLIP-I also: mean over the image prompts" in text
    assert "background acc … size acc" in text  # adjacent columns as a range


def test_captions_give_n_settings_and_backbones():
    long = _long([("sd", "clip_t", 0.3, "hf-clip:judge", "raw cosine")])
    text = captions.caption("grid", "subject", long, {"sd": {"num_inference_steps": 20, "guidance_scale": 5.0}},
                            {"sd": 1})
    assert "all K references" in text and "oracle" in text
    assert "n = 4 items" in text and "sd 8" in text
    assert "num_inference_steps 20" in text and "guidance_scale 5" in text and "hf-clip:judge" in text
    assert "n =" not in captions.caption("bars", "subject", None, {"sd": {}}, {"sd": 1})  # table not written yet


def test_paper_tables_carry_the_published_rows_in_booktabs_and_html():
    long = _long([("oracle", "dino", 0.7, "hf-dino", "cosine")])
    wide, note_lines = tables.display(long, ["oracle"], "paper", "subject", "oracle", "dreambench",
                                      {"oracle": "Real images"})
    assert wide.loc["oracle", "DINO ↑ (paper)"] == "0.774" and any("published values" in n for n in note_lines)
    tex = tables.to_latex(wide, note_lines, "subject")
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\label{tab:ipbench-subject}" in tex
    caption = tex[tex.index("\\caption{"):tex.index("\\label")]
    assert "95\\% CI" in caption and "%" not in caption.replace("\\%", "")  # a bare % would end the caption
    page = tables.to_html(wide, note_lines)
    assert page.count("<table") == 1 and "paper: Textual Inversion (SD)" in page
