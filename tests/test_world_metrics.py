"""Analyzer-based metrics against the renderer's exact ground truth."""
import dataclasses

import numpy as np

from ipbench.world.render import BACKGROUNDS, Scene, render, subject_set
from ipbench.world.metrics import attribute_scores, subject_fidelity

TRUTH_KEYS = ("background", "position", "size", "colour")


def _scene(**changes):
    base = Scene("star", "red", "striped", "large", "center", "sand", rotation=10.0)
    return dataclasses.replace(base, **changes)


def _truth(scene):
    return {key: getattr(scene, key) for key in TRUTH_KEYS}


def test_a_render_matches_its_own_truth_and_not_another():
    scene = _scene()
    scores = attribute_scores([render(scene), render(_scene(colour="blue", position="top left"))],
                              [_truth(scene), _truth(scene)])
    assert scores.loc[0, [f"acc_{k}" for k in TRUTH_KEYS]].tolist() == [1.0] * 4
    assert scores.loc[0, "all_correct"] == 1.0
    assert scores.loc[1, "acc_colour"] == 0.0 and scores.loc[1, "acc_position"] == 0.0
    assert scores.loc[1, "acc_background"] == 1.0 and scores.loc[1, "all_correct"] == 0.0
    # without a shape reader, shape and texture are not judged rather than guessed
    assert "acc_shape" not in attribute_scores([render(scene)], [{"shape": "star"}]).columns


def test_an_empty_image_counts_as_wrong_not_as_a_crash():
    background = np.broadcast_to(np.array(BACKGROUNDS["sand"][0], np.uint8), (64, 64, 3)).copy()
    scores = attribute_scores([background], [_truth(_scene())])
    assert scores.loc[0, "no_single_object"] == 1.0 and scores.loc[0, "all_correct"] == 0.0
    fidelity = subject_fidelity([background], [[render(_scene())]])
    assert fidelity.loc[0, "subject_iou"] == 0.0 and np.isnan(fidelity.loc[0, "colour_error"])


def test_subject_fidelity_separates_same_from_different_blob():
    first, second = subject_set(2, 2)
    same = render(first.references[1])
    other = render(second.references[1])
    fidelity = subject_fidelity([same, other], [[render(first.references[0])]] * 2)
    assert fidelity.loc[0, "subject_iou"] > fidelity.loc[1, "subject_iou"]
    assert fidelity.loc[0, "colour_error"] < 5.0


def test_the_shape_reader_reads_images_of_other_sizes_as_the_analyzer_does():
    """A 128 px render is scored like its 64 px resize (``resized`` flagged), not refused by the shape CNN."""
    from PIL import Image

    from ipbench.world.shape_cnn import load_shape_cnn, predict
    from tests.test_world_checkpoints import CHECKPOINTS

    model = load_shape_cnn(CHECKPOINTS / "shape_cnn", "cpu")
    seen = []

    def reader(images):
        seen.extend(image.shape for image in images)
        return predict(model, np.stack(images))[:2]

    scene = _scene()
    large = np.asarray(Image.fromarray(render(scene)).resize((128, 128), Image.BICUBIC))
    scores = attribute_scores([large], [{**_truth(scene), "shape": "star"}], reader)
    assert seen == [(64, 64, 3)]
    assert scores.loc[0, "resized"] == 1.0 and scores.loc[0, "acc_shape"] == 1.0
