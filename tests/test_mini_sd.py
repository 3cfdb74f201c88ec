"""Mini SD: CLIP tower extraction, pipeline folder round trip, IP-Adapter file format, training smoke runs.

Random tiny weights throughout: outputs mean nothing, only shapes, loading and determinism are checked.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from ipbench.world.mini_sd import train_unet, train_vae
from ipbench.world.pipeline import load_clip_towers
from tests.tiny_models import (
    TINY_CLIP_WIDTH,
    build_tiny_clip,
    build_tiny_pipeline,
    tiny_unet_config,
    tiny_vae_config,
)

TINY_VAE = tiny_vae_config()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory, tiny_clip):
    return build_tiny_pipeline(tmp_path_factory.mktemp("mini_sd") / "pipe", tiny_clip)


def test_clip_towers_match_clip_model(tiny_clip):
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(tiny_clip).eval()
    tokenizer, text_encoder, image_encoder, _ = load_clip_towers(tiny_clip)
    tokens = tokenizer(["a red circle", "blue"], padding="max_length", return_tensors="pt")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        text = clip.text_model(input_ids=tokens.input_ids)
        assert torch.allclose(text_encoder(tokens.input_ids).last_hidden_state, text.last_hidden_state)
        image = clip.visual_projection(clip.vision_model(pixel_values=pixels).pooler_output)
        assert torch.allclose(image_encoder(pixels).image_embeds, image, atol=1e-6)


def _generate(pipe, seed, **kwargs):
    return pipe("a red circle", num_inference_steps=2, guidance_scale=3.0, output_type="np",
                generator=torch.Generator("cpu").manual_seed(seed), **kwargs).images


def test_pipeline_folder_keeps_clip_weights(pipeline_dir, tiny_clip):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir)
    tokenizer, text_encoder, image_encoder, _ = load_clip_towers(tiny_clip)
    for loaded, original in ((pipe.text_encoder, text_encoder), (pipe.image_encoder, image_encoder)):
        saved = original.state_dict()
        assert loaded.state_dict().keys() == saved.keys()
        assert all(torch.equal(value, saved[key]) for key, value in loaded.state_dict().items())
    assert pipe.tokenizer.model_max_length == tokenizer.model_max_length
    assert pipe.feature_extractor.crop_size == {"height": 32, "width": 32}  # the CLIP's own, not 224


def test_pipeline_folder_loads_and_generates_deterministically(pipeline_dir):
    from diffusers import StableDiffusionPipeline

    assert sorted(p.name for p in pipeline_dir.glob("*/*.safetensors"))  # safetensors, not .bin
    assert not list(pipeline_dir.glob("*/*.bin"))
    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    first, again, other = _generate(pipe, 1), _generate(pipe, 1), _generate(pipe, 2)
    assert first.shape == (1, 64, 64, 3) and np.isfinite(first).all()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def ip_adapter_state_dict(unet, image_embed_dim: int, seed: int = 0) -> dict:
    """Random weights laid out like the official ip-adapter_sd15 file, built here from the UNet independently."""
    generator = torch.Generator().manual_seed(seed)
    width = unet.config.cross_attention_dim
    image_proj = {"proj.weight": torch.randn(4 * width, image_embed_dim, generator=generator) * 0.1,
                  "proj.bias": torch.zeros(4 * width), "norm.weight": torch.ones(width), "norm.bias": torch.zeros(width)}
    ip_adapter = {}
    # Official numbering: every attention processor of the UNet in order; cross-attention ones (attn2) are odd.
    for number, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            module = unet.get_submodule(name.removesuffix(".processor"))
            for projection in ("to_k_ip", "to_v_ip"):
                ip_adapter[f"{number}.{projection}.weight"] = torch.randn(
                    module.to_k.out_features, width, generator=generator) * 0.1
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


@pytest.mark.parametrize("file_format", ["safetensors", "bin"])
def test_ip_adapter_checkpoint_loads_and_changes_output(pipeline_dir, tmp_path, file_format):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(pipeline_dir)
    cross_attention_layers = [n for n in pipe.unet.attn_processors if n.endswith("attn2.processor")]
    state = ip_adapter_state_dict(pipe.unet, pipe.image_encoder.config.projection_dim)
    assert len(state["ip_adapter"]) == 2 * len(cross_attention_layers)
    assert {key.split(".")[0] for key in state["ip_adapter"]} == {str(2 * i + 1)
                                                                  for i in range(len(cross_attention_layers))}
    weight_name = f"ip-adapter_mini.{file_format}"
    if file_format == "safetensors":
        save_file({f"{part}.{key}": value for part, weights in state.items() for key, value in weights.items()},
                  tmp_path / weight_name)
    else:
        torch.save(state, tmp_path / weight_name)

    reference = np.zeros((32, 32, 3), np.uint8) + np.array([200, 30, 30], np.uint8)
    plain = _generate(pipe, 1)
    pipe.load_ip_adapter(str(tmp_path), subfolder="", weight_name=weight_name)
    pipe.set_ip_adapter_scale(0.5)
    first = _generate(pipe, 1, ip_adapter_image=reference)
    assert first.shape == (1, 64, 64, 3) and np.isfinite(first).all()
    assert np.array_equal(first, _generate(pipe, 1, ip_adapter_image=reference))
    assert not np.array_equal(first, plain)  # the adapter's keys reached the attention layers
    pipe.set_ip_adapter_scale(0.0)
    assert np.allclose(_generate(pipe, 1, ip_adapter_image=reference), plain, atol=1e-5)


@pytest.fixture(scope="module")
def renders():
    from ipbench.world.train_data import render_training_set

    return render_training_set(16, "train", seed=0)


def _stored_dtypes(folder) -> set:
    from safetensors import safe_open

    (weights,) = folder.glob("*.safetensors")
    with safe_open(str(weights), "pt") as handle:
        return {handle.get_tensor(key).dtype for key in handle.keys()}


def test_train_vae_smoke(renders, tmp_path):
    from diffusers import AutoencoderKL

    record = train_vae(tmp_path / "vae", renders, steps=2, batch_size=4, seed=0, device="cpu",
                       config=TINY_VAE, log_every=1)
    assert record["stopped_at_step"] == 2
    assert len(record["history"]) == 2 and np.isfinite([h["loss"] for h in record["history"]]).all()
    assert _stored_dtypes(tmp_path / "vae") == {torch.float16}  # half the bytes in the repo
    vae = AutoencoderKL.from_pretrained(tmp_path / "vae", dtype=torch.float32)
    assert vae.config.scaling_factor == pytest.approx(record["scaling_factor"])
    # Independent check of the stored factor: sampled latents of the same images, scaled, have unit std
    # (loose: the stored weights are the float16 rounding of the ones it was measured with).
    with torch.no_grad():
        pixels = torch.from_numpy(renders["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
        latents = vae.encode(pixels).latent_dist.sample(torch.Generator().manual_seed(5))
    assert float(latents.std()) * vae.config.scaling_factor == pytest.approx(1.0, abs=0.05)


class FakeClock:
    """perf_counter that advances one second per call: a time limit bites after a fixed number of steps."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_time_limit_stops_early_and_still_saves(renders, tmp_path, monkeypatch):
    from ipbench.training import loop

    monkeypatch.setattr(loop, "time", FakeClock())
    record = train_vae(tmp_path / "vae", renders, steps=10_000, batch_size=4, seed=0, device="cpu",
                       config=TINY_VAE, time_limit_s=8, log_every=1)
    # Each step reads the clock twice (finished, set_lr): the 8 s limit ends the run after 4 steps.
    assert record["stopped_at_step"] == 4
    assert (tmp_path / "vae" / "config.json").exists()
    # The schedule runs on elapsed time too: the last steps' learning rate has decayed well below the peak.
    assert record["history"][-1]["lr"] < 0.5 * max(h["lr"] for h in record["history"])


def test_train_unet_smoke(renders, tiny_clip, tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    AutoencoderKL(**TINY_VAE, scaling_factor=0.5).save_pretrained(tmp_path / "vae")
    record = train_unet(tmp_path / "unet", tmp_path / "vae", tiny_clip, renders, steps=2, batch_size=4, seed=0,
                        device="cpu", config=tiny_unet_config(), log_every=1)
    assert record["stopped_at_step"] == 2
    assert len(record["history"]) == 2 and np.isfinite([h["loss"] for h in record["history"]]).all()
    unet = UNet2DConditionModel.from_pretrained(tmp_path / "unet", dtype=torch.float32)
    assert unet.config.cross_attention_dim == TINY_CLIP_WIDTH
    assert record["n_images"] == len(renders["images"])


def test_caption_tokens_match_the_pipeline_padding(tiny_clip):
    from ipbench.world.mini_sd import _caption_tokens
    from ipbench.world.train_data import render_training_set

    tokenizer, _, _, _ = load_clip_towers(tiny_clip)
    scenes = render_training_set(4, "train", seed=1)["scenes"]
    ids = _caption_tokens(tokenizer, scenes, variants=3, rng=np.random.default_rng(0))
    assert ids.shape == (4, 3, tokenizer.model_max_length)
    # Re-draw the same captions and tokenize them one by one, as StableDiffusionPipeline does.
    from ipbench.world.train_data import training_captions

    rng = np.random.default_rng(0)
    texts = [training_captions(scenes, rng)[0] for _ in range(3)]
    for variant in range(3):
        for k in range(4):
            expected = tokenizer(texts[variant][k], padding="max_length", max_length=tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids[0]
            assert torch.equal(ids[k, variant], expected)
