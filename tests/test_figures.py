"""Figure helpers: layouts follow their inputs (the DAG tests check the files exist)."""
import numpy as np
import pandas as pd
from PIL import Image

from ipbench import figures


def _size(path):
    with Image.open(path) as image:
        return image.size


def test_image_grid_adds_a_caption_column_for_text_only_tasks(tmp_path):
    images = [np.full((16, 16, 3), k * 40, np.uint8) for k in range(3)]
    figures.image_grid([("a", images), ("b", images)], tmp_path / "plain.png")
    figures.image_grid([("a", images), ("b", images)], tmp_path / "captioned.png",
                       row_labels=["a red circle", "a blue star", "a green cross"])
    (plain_w, plain_h), (captioned_w, captioned_h) = _size(tmp_path / "plain.png"), _size(tmp_path / "captioned.png")
    assert captioned_h == plain_h
    assert captioned_w > plain_w * 1.3  # one more column: three instead of two


def test_sweep_plot_has_one_panel_per_metric_present(tmp_path):
    rows = [{"param_value": value, "metric": metric, "value": v, "ci95_low": v - 0.1, "ci95_high": v + 0.1}
            for value in (1.0, 3.0, 7.5) for metric, v in (("fid", 10 + value), ("all_correct", value / 10))]
    long = pd.DataFrame(rows)
    figures.sweep_plot(long, "guidance_scale", ["fid", "all_correct"], tmp_path / "two.png")
    figures.sweep_plot(long, "guidance_scale", ["fid", "all_correct", "kid"], tmp_path / "absent_kid.png")
    figures.sweep_plot(long, "guidance_scale", ["fid"], tmp_path / "one.png")
    assert _size(tmp_path / "absent_kid.png") == _size(tmp_path / "two.png")  # no empty panel for kid
    assert _size(tmp_path / "two.png")[0] > 1.8 * _size(tmp_path / "one.png")[0]
