"""IP-Adapter and IP-Adapter-Plus on a tiny random pipeline: file format, training, loading, generation.

Random weights: images mean nothing. What is checked is that the files have
IP-Adapter's own layout, survive a save/load round trip through diffusers'
``load_ip_adapter`` exactly, that training moves only the adapter, and that the
method's image prompts reach the UNet (scale 0 is the base model).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ipbench.diffusion import ip_adapter
from ipbench.imageset import Request
from tests.tiny_models import build_tiny_clip, build_tiny_pipeline


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ip_adapter")
    return build_tiny_pipeline(root / "pipe", build_tiny_clip(root / "clip"))


def _pipe(pipeline_dir):
    from diffusers import StableDiffusionPipeline

    from ipbench.diffusion.pipelines import load_pipeline

    return load_pipeline(StableDiffusionPipeline, str(pipeline_dir), "cpu")


def _embed_dim(pipe, plus):
    return pipe.image_encoder.config.hidden_size if plus else pipe.image_encoder.config.projection_dim


def _randomised(pipe, plus, seed=0):
    """A pipeline with a fresh adapter whose every weight is random (so a swapped key cannot go unnoticed)."""
    state = ip_adapter.new_adapter_state(pipe.unet, _embed_dim(pipe, plus), plus, 16 if plus else 4, seed)
    generator = torch.Generator().manual_seed(seed)
    state = {group: {k: torch.randn(v.shape, generator=generator) for k, v in values.items()}
             for group, values in state.items()}
    pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None)
    return state


def _layers(pipe):
    return len(ip_adapter.cross_attention_processors(pipe.unet))


def test_plain_adapter_has_ip_adapters_own_key_layout(pipeline_dir):
    pipe = _pipe(pipeline_dir)
    _randomised(pipe, plus=False)
    state = ip_adapter.adapter_state_dict(pipe.unet)
    assert set(state["image_proj"]) == {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}
    ids = range(1, 2 * _layers(pipe), 2)
    assert set(state["ip_adapter"]) == {f"{i}.to_{kv}_ip.weight" for i in ids for kv in "kv"}
    cross = pipe.unet.config.cross_attention_dim
    assert state["image_proj"]["proj.weight"].shape == (4 * cross, _embed_dim(pipe, False))


def test_plus_adapter_has_the_original_resampler_layout(pipeline_dir):
    pipe = _pipe(pipeline_dir)
    _randomised(pipe, plus=True)
    keys = set(ip_adapter.adapter_state_dict(pipe.unet)["image_proj"])
    expected = {"latents", "proj_in.weight", "proj_in.bias", "proj_out.weight", "proj_out.bias", "norm_out.weight",
                "norm_out.bias"}
    for i in range(ip_adapter.PLUS_DEPTH):
        expected |= {f"layers.{i}.0.norm1.weight", f"layers.{i}.0.norm1.bias", f"layers.{i}.0.norm2.weight",
                     f"layers.{i}.0.norm2.bias", f"layers.{i}.0.to_q.weight", f"layers.{i}.0.to_kv.weight",
                     f"layers.{i}.0.to_out.weight", f"layers.{i}.1.0.weight", f"layers.{i}.1.0.bias",
                     f"layers.{i}.1.1.weight", f"layers.{i}.1.3.weight"}
    assert keys == expected


@pytest.mark.parametrize("plus", [False, True])
def test_save_and_load_ip_adapter_round_trip_exactly(pipeline_dir, tmp_path, plus):
    pipe = _pipe(pipeline_dir)
    written = _randomised(pipe, plus)
    # diffusers' converter read our layout; converting back gives the very tensors we wrote
    back = ip_adapter.adapter_state_dict(pipe.unet)
    for group in ("image_proj", "ip_adapter"):
        assert set(back[group]) == set(written[group])
        for key, value in written[group].items():
            torch.testing.assert_close(back[group][key], value, rtol=0, atol=0, msg=key)
    path = ip_adapter.save_adapter(back, tmp_path / ip_adapter.WEIGHT_NAME, dtype=torch.float32)
    fresh = _pipe(pipeline_dir)
    ip_adapter.load_adapter(fresh, tmp_path)
    sample = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    text = torch.randn(2, 8, pipe.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(2))
    shape = (2, 1, 16, 32) if plus else (2, 1, _embed_dim(pipe, False))
    image = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    outputs = []
    for unet in (pipe.unet, fresh.unet):
        with torch.no_grad():
            outputs.append(unet(sample, 10, encoder_hidden_states=text,
                                added_cond_kwargs={"image_embeds": [image]}).sample)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    assert path.stat().st_size > 0


def test_fresh_adapter_copies_to_k_and_to_v(pipeline_dir):
    pipe = _pipe(pipeline_dir)
    state = ip_adapter.new_adapter_state(pipe.unet, _embed_dim(pipe, False), False, 4, 0)
    modules = dict(pipe.unet.named_modules())
    for index, (name, _) in enumerate(ip_adapter.cross_attention_processors(pipe.unet)):
        layer = modules[name.removesuffix(".processor")]
        assert torch.equal(state["ip_adapter"][f"{2 * index + 1}.to_k_ip.weight"], layer.to_k.weight)
        assert torch.equal(state["ip_adapter"][f"{2 * index + 1}.to_v_ip.weight"], layer.to_v.weight)


@pytest.fixture(scope="module")
def trained(pipeline_dir, tmp_path_factory):
    """Two training steps of each adapter on 12 renders (4 held out)."""
    from ipbench.world.train_data import render_training_set

    data = render_training_set(12, "train", seed=0)
    held_out = {"images": data["images"][8:], "scenes": data["scenes"][8:]}
    data = {"images": data["images"][:8], "scenes": data["scenes"][:8]}
    out = {}
    for plus in (False, True):
        folder = tmp_path_factory.mktemp("plus" if plus else "plain")
        record = ip_adapter.train(folder, pipeline_dir, data, plus=plus, steps=2, batch_size=4, lr=1e-3, seed=0,
                                  num_tokens=16 if plus else 4, drop_text=0.05, drop_image=0.05, drop_both=0.05,
                                  weight_decay=0.0, time_limit_s=None, device="cpu", held_out=held_out)
        out[plus] = folder, record
    return out


@pytest.mark.parametrize("plus", [False, True])
def test_two_training_steps_move_only_the_adapter(trained, pipeline_dir, plus):
    from safetensors.torch import load_file

    folder, record = trained[plus]
    assert record["stopped_at_step"] == 2 and [row["step"] for row in record["history"]] == [0, 1]
    assert np.isfinite(record["validation"]["heldout_loss_with_image"])
    assert record["validation"]["n_heldout"] == 4
    saved = load_file(folder / ip_adapter.WEIGHT_NAME)
    assert all(value.dtype == torch.float16 for value in saved.values())
    pipe = _pipe(pipeline_dir)
    initial = ip_adapter.new_adapter_state(pipe.unet, _embed_dim(pipe, plus), plus, 16 if plus else 4, 0)
    moved = [key for key, value in initial["ip_adapter"].items()
             if not torch.allclose(saved[f"ip_adapter.{key}"].float(), value, atol=1e-3)]
    assert moved, "training changed no to_k_ip / to_v_ip weight"
    # the base model stays frozen: the file holds only the adapter, and the pipeline folder is untouched
    assert all(key.startswith(("image_proj.", "ip_adapter.")) for key in saved)


def _write_conditions(data_dir):
    rng = np.random.default_rng(0)
    (data_dir / "conditions").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data_dir / "conditions" / f"{name}.png")


def _method(cls, pipeline_dir, adapter, tmp_path, **params):
    settings = {"pretrained": str(pipeline_dir), "adapter": str(adapter), "num_inference_steps": 2, **params}
    return cls(tmp_path, settings, "cpu")


VARIATION = Request("v0", 0, 11, {"image": "conditions/a.png", "prompt": "a red circle"})
SUBJECT = Request("s0", 0, 12, {"images": ["conditions/a.png", "conditions/b.png", "conditions/c.png"],
                                "prompt": "a blob on a sand background", "subject": "subject00"})


@pytest.mark.parametrize("plus", [False, True])
def test_method_generates_from_image_prompts(trained, pipeline_dir, tmp_path, plus):
    from methods.ip_adapter import IPAdapter, IPAdapterPlus

    _write_conditions(tmp_path)
    cls = IPAdapterPlus if plus else IPAdapter
    images = {}
    for references in ("mean", "one", "all"):
        method = _method(cls, pipeline_dir, trained[plus][0], tmp_path, references=references)
        out = method.generate([VARIATION], tmp_path) + method.generate([SUBJECT], tmp_path)
        assert [image.shape for image in out] == [(64, 64, 3)] * 2 and out[0].dtype == np.uint8
        images[references] = out
    # one image prompt: the three ways to use K references agree; with K = 3 they differ
    assert np.array_equal(images["mean"][0], images["one"][0]) and np.array_equal(images["mean"][0], images["all"][0])
    assert not np.array_equal(images["mean"][1], images["one"][1])
    assert not np.array_equal(images["mean"][1], images["all"][1])


def test_scale_zero_is_the_base_model_and_the_image_matters(trained, pipeline_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    from ipbench.diffusion import sampling
    from ipbench.diffusion.pipelines import load_pipeline
    from methods.ip_adapter import IPAdapter

    _write_conditions(tmp_path)
    off = _method(IPAdapter, pipeline_dir, trained[False][0], tmp_path, scale=0.0).generate([VARIATION], tmp_path)[0]
    base = load_pipeline(StableDiffusionPipeline, str(pipeline_dir), "cpu")
    with torch.no_grad():
        plain = base("a red circle", num_inference_steps=2, guidance_scale=7.5,
                     generator=sampling.generators([VARIATION], "cpu"), output_type="np").images
    assert np.abs(off.astype(int) - sampling.to_uint8(plain)[0].astype(int)).max() <= 1
    method = _method(IPAdapter, pipeline_dir, trained[False][0], tmp_path, scale=1.0)
    other = Request("v0", 0, 11, {"image": "conditions/b.png", "prompt": "a red circle"})
    first, second = method.generate([VARIATION], tmp_path)[0], method.generate([other], tmp_path)[0]
    assert not np.array_equal(first, second)


def test_missing_adapter_names_the_file_and_the_retrain_command(pipeline_dir, tmp_path):
    pipe = _pipe(pipeline_dir)
    with pytest.raises(FileNotFoundError, match=r"ip_adapter/ip-adapter.safetensors.*retrain=ip_adapter"):
        ip_adapter.load_adapter(pipe, tmp_path / "ip_adapter")


def test_adapter_for_another_base_model_names_both_shapes(pipeline_dir, tmp_path):
    pipe = _pipe(pipeline_dir)
    state = ip_adapter.new_adapter_state(pipe.unet, _embed_dim(pipe, False), False, 4, 0)
    wrong = state["ip_adapter"]["1.to_k_ip.weight"]
    state["ip_adapter"]["1.to_k_ip.weight"] = torch.zeros(wrong.shape[0] + 8, wrong.shape[1])
    ip_adapter.save_adapter(state, tmp_path / ip_adapter.WEIGHT_NAME)
    expected = rf"ip_adapter.1.to_k_ip.weight has shape \[{wrong.shape[0] + 8}, {wrong.shape[1]}\].*" \
               rf"needs \[{wrong.shape[0]}, {wrong.shape[1]}\]"
    with pytest.raises(ValueError, match=expected):
        ip_adapter.load_adapter(_pipe(pipeline_dir), tmp_path)


def test_a_request_without_an_image_prompt_names_the_item(trained, pipeline_dir, tmp_path):
    from methods.ip_adapter import IPAdapter

    method = _method(IPAdapter, pipeline_dir, trained[False][0], tmp_path)
    with pytest.raises(ValueError, match="item 't0' has neither condition.image"):
        method.generate([Request("t0", 0, 1, {"prompt": "a red circle"})], tmp_path)


def test_adapter_sources_local_and_hub():
    assert ip_adapter.adapter_location("h94/IP-Adapter/models/ip-adapter_sd15.bin") == (
        "h94/IP-Adapter", "models", "ip-adapter_sd15.bin", False)
    assert ip_adapter.adapter_location("results/mini/trained/ip_adapter") == (
        "results/mini/trained/ip_adapter", "", ip_adapter.WEIGHT_NAME, True)


def test_original_bin_file_in_the_hub_layout_loads_with_its_image_encoder(pipeline_dir, tmp_path):
    """h94/IP-Adapter's layout, offline: models/ip-adapter_sd15.bin beside models/image_encoder, loaded
    into a pipeline that has no image encoder (SD 1.5's), which load_ip_adapter then takes from the repo."""
    from diffusers import StableDiffusionPipeline

    from ipbench.diffusion.pipelines import load_pipeline
    from ipbench.world.pipeline import assemble_pipeline, load_clip_towers

    root = pipeline_dir.parent
    no_encoder = assemble_pipeline(tmp_path / "sd", root / "pipe-parts" / "vae", root / "pipe-parts" / "unet",
                                   root / "clip", with_image_encoder=False)
    models = tmp_path / "repo" / "models"
    load_clip_towers(root / "clip")[2].save_pretrained(models / "image_encoder")
    with_encoder = _pipe(pipeline_dir)
    state = _randomised(with_encoder, plus=False)
    torch.save(state, models / "ip-adapter_sd15.bin")
    pipe = load_pipeline(StableDiffusionPipeline, str(no_encoder), "cpu")
    assert pipe.image_encoder is None
    ip_adapter.load_adapter(pipe, models / "ip-adapter_sd15.bin")
    assert pipe.image_encoder is not None
    back = ip_adapter.adapter_state_dict(pipe.unet)
    for key, value in state["ip_adapter"].items():
        assert torch.equal(back["ip_adapter"][key], value), key


@pytest.mark.parametrize("plus", [False, True])
def test_the_unet_with_the_adapter_traces_as_one_graph(trained, pipeline_dir, tmp_path, plus):
    # `compile` (fast.accelerate) uses fullgraph=True: a graph break in our attention processors would
    # fail the job on the GPU. Dynamo's eager backend traces exactly that, without compiling kernels.
    from methods.ip_adapter import IPAdapter, IPAdapterPlus

    _write_conditions(tmp_path)
    method = _method(IPAdapterPlus if plus else IPAdapter, pipeline_dir, trained[plus][0], tmp_path)
    expected = method.generate([VARIATION], tmp_path)
    torch._dynamo.reset()
    method.pipeline().unet.compile(backend="eager", fullgraph=True)
    assert np.array_equal(method.generate([VARIATION], tmp_path)[0], expected[0])
