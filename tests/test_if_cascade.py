"""The IF cascade: T5 tokenizer and span corruption, few-step training of every part, pipeline loading of
both stages, the method's outputs, and its bad-input errors."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ipbench.imageset import Request
from ipbench.world import cascade, t5_text
from ipbench.world.render import caption, held_out_scenes, render

TINY_STAGE = {"block_out_channels": (16, 16, 16, 16), "attention_head_dim": 2}


@pytest.fixture(scope="module")
def world_data():
    scenes = held_out_scenes(24, seed=3)
    return {"images": np.stack([render(scene) for scene in scenes]), "scenes": scenes}


@pytest.fixture(scope="module")
def parts(tmp_path_factory, world_data):
    """A T5 and both stages, each trained for two steps on CPU (what the DAG rule runs, at toy size)."""
    root = tmp_path_factory.mktemp("cascade")
    t5 = root / "t5_text"
    record = t5_text.train_t5(t5, world_data["scenes"], steps=2, batch_size=8, device="cpu", log_every=1,
                              architecture={"d_model": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
                                            "d_ff": 64}, held_out=world_data["scenes"][:6])
    stages = {}
    for stage in ("base", "sr"):
        stages[stage] = root / stage
        cascade.train_stage(stages[stage], stage, t5, world_data, steps=2, batch_size=4, device="cpu",
                            architecture=TINY_STAGE, caption_variants=2)
    return {"t5": t5, "t5_record": record, **stages}


def test_tokenizer_keeps_world_words_whole_and_pads_as_if_does(tmp_path):
    tokenizer = t5_text.build_tokenizer(tmp_path)
    text = "a small red striped star on a sand background, top left"
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(text).input_ids)
    assert pieces[-1] == "</s>"
    assert "▁striped" in pieces and "▁left" in pieces and "<unk>" not in pieces
    # A word outside the world falls back to characters, not to <unk>.
    assert tokenizer.unk_token_id not in tokenizer("a zebra").input_ids
    assert len(tokenizer.convert_ids_to_tokens(tokenizer("zebra", add_special_tokens=False).input_ids)) > 1
    assert tokenizer.model_max_length == t5_text.MAX_LENGTH == 77


def test_span_corruption_hides_and_restores_every_token():
    rng = np.random.default_rng(0)
    sentinels, eos = [100, 99, 98, 97], 1
    for length in (2, 5, 12):
        ids = list(range(10, 10 + length))
        inputs, targets = t5_text.span_corrupt(ids, rng, sentinels, eos)
        assert inputs[-1] == eos and targets[-1] == eos
        used = [token for token in inputs if token in sentinels]
        assert used == sentinels[: len(used)] and used
        # Putting each hidden span back at its sentinel gives the sequence again.
        spans, current = {}, None
        for token in targets[:-1]:
            if token in sentinels:
                current = token
                spans[current] = []
            else:
                spans[current].append(token)
        restored = [t for token in inputs[:-1] for t in (spans[token] if token in sentinels else [token])]
        assert restored == ids


def test_reconstruction_corrupts_some_tokens_and_targets_the_whole_caption(tmp_path):
    rng = np.random.default_rng(0)
    sentinels, eos, corrupted, masked = [100, 99, 98, 97], 1, 0, 0
    for length in (1, 4, 20) * 20:
        ids = list(range(10, 10 + length))
        inputs, targets = t5_text.reconstruct_corrupt(ids, rng, sentinels, eos, vocab=(3, 50))
        assert targets == ids + [eos] and len(inputs) == len(targets) and inputs[-1] == eos
        changed = [a for a, b in zip(inputs, ids) if a != b]
        assert changed or length == 1 and inputs[0] in range(3, 50)  # a random piece may equal the original
        assert all(token == sentinels[0] or 3 <= token < 50 for token in changed)
        corrupted += len(changed)
        masked += sum(token == sentinels[0] for token in changed)
    assert 0.8 < masked / corrupted < 1.0  # 90% masked, 10% random pieces
    with pytest.raises(ValueError, match="objective"):
        t5_text.corruption("prefix_lm", t5_text.build_tokenizer(tmp_path))


@pytest.mark.parametrize("objective", t5_text.OBJECTIVES)
def test_t5_batches_do_not_depend_on_the_number_of_loader_workers(objective, tmp_path):
    pool = [list(range(10, 10 + n)) for n in (3, 5, 8, 13)] * 4
    corrupt = t5_text.corruption(objective, t5_text.build_tokenizer(tmp_path))
    batches = t5_text._CorruptedBatches(pool, steps=3, batch_size=5, seed=0, corrupt=corrupt)

    def drawn(workers):
        loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers)
        return [tuple(t.tolist() for t in batch) for batch in loader]

    serial = drawn(0)
    assert drawn(2) == serial
    assert serial[0] != serial[1]  # each step draws its own captions and spans


def test_t5_training_saves_an_encoder_that_loads_and_separates_words(parts):
    tokenizer, encoder = t5_text.load_t5(parts["t5"])
    assert type(encoder).__name__ == "T5EncoderModel"
    assert {"val_loss", "val_token_accuracy"} <= set(parts["t5_record"]["history"][-1])
    states = cascade.encode_prompts(tokenizer, encoder, ["a red circle, top left", "a red circle, bottom right"], "cpu")
    assert states.shape == (2, 77, 32)
    assert (states[0] - states[1]).norm() > 0


def test_our_t5_encoding_equals_ifpipelines_own(parts, tmp_path):
    from diffusers import IFPipeline

    folder = cascade.assemble_stage(tmp_path / "stage_1", parts["base"], parts["t5"])
    pipe = IFPipeline.from_pretrained(folder, dtype=torch.float32)
    prompts = ["a big blue dotted square on a grass background, center", "a red object"]
    ours = cascade.encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts, "cpu")
    theirs, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, device="cpu", clean_caption=False)
    torch.testing.assert_close(ours, theirs)


def test_both_stage_folders_load_and_run_as_plain_if_pipelines(parts, tmp_path):
    from diffusers import IFPipeline, IFSuperResolutionPipeline

    first = IFPipeline.from_pretrained(cascade.assemble_stage(tmp_path / "1", parts["base"], parts["t5"]),
                                       dtype=torch.float32)
    second = IFSuperResolutionPipeline.from_pretrained(cascade.assemble_stage(tmp_path / "2", parts["sr"], parts["t5"]),
                                                       dtype=torch.float32)
    for pipe in (first, second):
        pipe.set_progress_bar_config(disable=True)
    low = first("a red circle", num_inference_steps=2, guidance_scale=3.0, output_type="pt",
                generator=torch.Generator().manual_seed(0)).images
    assert low.shape == (1, 3, 32, 32)
    high = second(image=low, prompt="a red circle", num_inference_steps=2, guidance_scale=3.0, noise_level=50,
                  output_type="np", generator=torch.Generator().manual_seed(0)).images
    assert high.shape == (1, 64, 64, 3)


def test_sr_training_sees_the_upsampling_the_pipeline_uses():
    low = torch.rand(2, 3, 32, 32) * 2 - 1
    ours = cascade.upsample_condition(low, 64)
    assert torch.allclose(ours, torch.nn.functional.interpolate(low, (64, 64), mode="bilinear", align_corners=True))
    renders = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    down = cascade.downsample(renders, 32)
    expected = (renders.permute(0, 3, 1, 2).float() / 127.5 - 1).reshape(2, 3, 32, 2, 32, 2).mean(dim=(3, 5))
    assert torch.allclose(down, expected, atol=1e-6)


def _method(tmp_path, parts, **params):
    from methods.if_cascade import IFCascade

    settings = IFCascade.check({"text_encoder": str(parts["t5"]), "stage_1": str(parts["base"]),
                                "stage_2": str(parts["sr"]), "num_inference_steps_1": 2, "num_inference_steps_2": 2,
                                **params})
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    facts = IFCascade.prepare(model_dir, settings)
    return IFCascade(model_dir, settings), facts


def _requests(prompts, seed0=0):
    return [Request(f"item{i}", 0, seed0 + i, {"prompt": p}) for i, p in enumerate(prompts)]


def test_method_generates_seeded_uint8_images_whatever_the_batch(parts, tmp_path):
    method, facts = _method(tmp_path, parts)
    assert (tmp_path / "model" / "stage_1" / "model_index.json").is_file()
    assert facts["stage_2"]["pipeline_class"] == "IFSuperResolutionPipeline"
    requests = _requests(["a red circle, top left", "a blue star on a grass background", "a small object"])
    together = method.generate(requests, tmp_path)
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in together)
    again = method.generate(requests, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(again, together))
    # Alone in its batch, an item gets the same image up to float summation order (one level at most).
    alone = method.generate(requests[1:2], tmp_path)
    assert np.abs(alone[0].astype(int) - together[1]).max() <= 1


def test_static_clipping_and_dynamic_thresholding_are_different_samplers(parts, tmp_path):
    dynamic, _ = _method(tmp_path, parts, guidance_scale_1=15.0)
    static, _ = _method(tmp_path, parts, guidance_scale_1=15.0, dynamic_thresholding=False)
    assert dynamic.stages()[0].scheduler.config.thresholding and not static.stages()[0].scheduler.config.thresholding
    requests = _requests(["a red circle"])
    assert not np.array_equal(dynamic.generate(requests, tmp_path)[0], static.generate(requests, tmp_path)[0])


def test_stage_two_can_start_from_the_upsampled_stage_one_image(parts, tmp_path):
    full, _ = _method(tmp_path, parts, num_inference_steps_2=4)
    partial, _ = _method(tmp_path, parts, num_inference_steps_2=4, sr_strength=0.5)
    assert type(full.stages()[1]).__name__ == "IFSuperResolutionPipeline"
    assert type(partial.stages()[1]).__name__ == "IFImg2ImgSuperResolutionPipeline"
    requests = _requests(["a red circle", "a blue star"])
    images = partial.generate(requests, tmp_path)
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in images)
    assert all(np.array_equal(a, b) for a, b in zip(images, partial.generate(requests, tmp_path)))
    assert not np.array_equal(images[0], full.generate(requests, tmp_path)[0])
    # Half of 4 steps runs 2 of them, from the schedule's middle: fewer calls of the stage II UNet.
    calls = []
    unet = partial.stages()[1].unet
    handle = unet.register_forward_hook(lambda *args: calls.append(1))
    partial.generate(requests[:1], tmp_path)
    handle.remove()
    assert len(calls) == 2


def test_a_stage_two_start_with_no_step_left_is_refused_naming_the_key(parts, tmp_path):
    with pytest.raises(ValueError, match=r"sr_strength 0.1 of num_inference_steps_2 2 leaves no stage II step"):
        _method(tmp_path, parts, sr_strength=0.1)


def test_long_prompts_are_truncated_and_logged_per_item(parts, tmp_path, caplog):
    method, _ = _method(tmp_path, parts)
    long_prompt = " ".join(["red"] * 90)
    with caplog.at_level(logging.WARNING, logger="ipbench.methods.if_cascade"):
        method.generate(_requests(["a red circle", long_prompt]), tmp_path)
    messages = [record.getMessage() for record in caplog.records]
    assert any("item item1" in m and "77" in m for m in messages)
    assert not any("item item0" in m for m in messages)


def test_a_super_resolution_stage_of_another_size_is_refused_naming_both(parts, tmp_path):
    facts = json.loads((parts["sr"] / cascade.STAGE_FILE).read_text())
    with pytest.raises(ValueError, match=r"takes 32x32 images, but the base stage gives 16x16"):
        cascade.check_stage_input((16, 16), parts["sr"])
    assert facts["low_resolution"] == 32


def test_a_stage_on_the_wrong_encoder_is_refused_naming_both(parts, tmp_path):
    with pytest.raises(ValueError, match=r"is a clip encoder of width \d+, but .* was trained on a t5 encoder"):
        _method(tmp_path, parts, text_encoder="data/checkpoints/cond_clip")


def test_saturation_metric_counts_clipped_channel_values():
    from metrics.image_metrics import Inputs, saturation

    image = np.full((4, 4, 3), 128, np.uint8)
    image[0, 0] = (255, 0, 7)  # two of 48 values
    values = saturation(Inputs({"images": lambda: [image, np.zeros((2, 2, 3), np.uint8)]}), {})["values"]
    assert values["saturation"].tolist() == [2 / 48, 1.0]


def test_tables_print_saturation_as_a_percentage():
    import pandas as pd

    from ipbench.tables import _cell

    row = pd.Series({"metric": "saturation", "value": 1.06e-4, "ci95_low": 0.5e-4, "ci95_high": 1.8e-4,
                     "vs_baseline_p": 0.5})
    assert _cell(row) == "0.011 ± 0.007"  # percent: 0.0106% of channel values, half-width 0.0065


def test_stage_evaluation_reports_accuracy_per_sampler(parts, tmp_path):
    shape_cnn = "data/checkpoints/shape_cnn"
    result = cascade.evaluate_stage(parts["sr"], parts["t5"], shape_cnn, n=3, guidance_scales=(1.0,),
                                    num_inference_steps=2, thresholding=(False,), noise_level=10)
    row = result["static_cfg_1"]
    assert {"acc_shape", "acc_position", "psnr", "saturated"} <= set(row)
    assert 0 <= row["acc_shape"] <= 1
    assert caption(held_out_scenes(1)[0])


def test_method_runs_on_full_if_folders_as_the_hub_ships_them(parts, tmp_path):
    """The paper suite's layout: two complete IF folders (stage II's T5 unused), text_encoder null."""
    from methods.if_cascade import IFCascade

    first = cascade.assemble_stage(tmp_path / "IF-I", parts["base"], parts["t5"])
    second = cascade.assemble_stage(tmp_path / "IF-II", parts["sr"], parts["t5"])
    settings = IFCascade.check({"text_encoder": None, "stage_1": str(first), "stage_2": str(second),
                                "num_inference_steps_1": 2, "num_inference_steps_2": 2})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    facts = IFCascade.prepare(model_dir, settings)
    assert facts["stage_1"]["path"] == str(first.resolve()) and not (model_dir / "stage_1").exists()
    images = IFCascade(model_dir, settings).generate(_requests(["a red circle"]), tmp_path)
    assert images[0].shape == (64, 64, 3)
    with pytest.raises(ValueError, match="text_encoder must name the encoder"):
        IFCascade.prepare(model_dir, IFCascade.check({"text_encoder": None, "stage_1": str(parts["base"]),
                                                      "stage_2": str(second)}))


def _as_trained_here(folder, text_dir, steps):
    """``folder`` with the manifest the DAG's training rule writes (what init_from continues from)."""
    from pathlib import Path

    from ipbench.training.manifest import write_manifest

    write_manifest(folder, "if_base", {"stopped_at_step": steps}, inputs={"text_encoder": str(text_dir)},
                   settings={}, config_sha256="test", seconds=1.0, repo=Path("."))
    return folder


def test_a_stage_continues_from_its_saved_weights_and_counts_their_steps(parts, world_data, tmp_path):
    import shutil

    from safetensors.torch import load_file

    t5 = shutil.copytree(parts["t5"], tmp_path / "t5")
    init = _as_trained_here(shutil.copytree(parts["base"], tmp_path / "init"), t5, steps=2)
    out = tmp_path / "continued"
    # lr 0: the continued weights must be the saved ones, so this checks that they were loaded.
    record = cascade.train_stage(out, "base", t5, world_data, steps=3, batch_size=4, lr=0.0, device="cpu",
                                 architecture=TINY_STAGE, caption_variants=2, init_dir=init)
    assert record["init_from"]["steps_before"] == 2 and record["total_steps"] == 5
    weights = "diffusion_pytorch_model.safetensors"
    before, after = load_file(init / weights), load_file(out / weights)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    fresh = cascade.train_stage(tmp_path / "fresh", "base", t5, world_data, steps=1, batch_size=4, lr=0.0,
                                device="cpu", architecture=TINY_STAGE, caption_variants=2, seed=1)
    assert fresh["total_steps"] == 1 and not torch.equal(load_file(tmp_path / "fresh" / weights)["conv_in.weight"],
                                                         before["conv_in.weight"])


def test_a_continuation_of_another_stage_architecture_or_encoder_is_refused(parts, world_data, tmp_path):
    import shutil

    from ipbench.training.manifest import write_manifest

    t5 = shutil.copytree(parts["t5"], tmp_path / "t5")
    init = _as_trained_here(shutil.copytree(parts["base"], tmp_path / "init"), t5, steps=2)
    train = dict(steps=1, batch_size=4, device="cpu", caption_variants=2, init_dir=init)
    with pytest.raises(ValueError, match=r"init_from .*init: cascade.json has stage 'base', this run 'sr'"):
        cascade.train_stage(tmp_path / "a", "sr", t5, world_data, architecture=TINY_STAGE, **train)
    with pytest.raises(ValueError, match=r"init_from .*init: config.json has attention_head_dim 2"):
        cascade.train_stage(tmp_path / "b", "base", t5, world_data, architecture={**TINY_STAGE, "attention_head_dim": 4},
                            **train)
    write_manifest(t5, "t5_text", {}, inputs={}, settings={"seed": 1}, config_sha256="other", seconds=1.0, repo=".")
    with pytest.raises(ValueError, match=r"trained on the text encoder .*t5, whose manifest differs"):
        cascade.train_stage(tmp_path / "c", "base", t5, world_data, architecture=TINY_STAGE, **train)
    with pytest.raises(ValueError, match=r"init_from .*nowhere: no manifest.json"):
        cascade.train_stage(tmp_path / "d", "base", t5, world_data, architecture=TINY_STAGE,
                            **{**train, "init_dir": tmp_path / "nowhere"})
