"""The fast generation path (ipbench/diffusion/fast.py): bfloat16 UNet/VAE outputs against eager fp32."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from ipbench.diffusion import fast


CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


@pytest.fixture(scope="module")
def parts():
    """The shipped mini SD's trained UNet and VAE (random nets amplify rounding far more than trained ones)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    return (UNet2DConditionModel.from_pretrained(CHECKPOINTS / "unet").eval(),
            AutoencoderKL.from_pretrained(CHECKPOINTS / "vae").eval())


class Pipe:  # the two parts accelerate touches
    def __init__(self, unet, vae):
        self.unet, self.vae = copy.deepcopy(unet), copy.deepcopy(vae)


def relative_l2(ours, reference):
    return float((ours.double() - reference.double()).norm() / reference.double().norm())


def unet_outputs(unet, fast_unet, generator, step: int):
    """The eager fp32 UNet's and the fast one's outputs on the same fresh random latents and text states."""
    size, width = unet.config.sample_size, unet.config.cross_attention_dim
    latents = torch.randn(2, unet.config.in_channels, size, size, generator=generator)
    states = torch.randn(2, 16, width, generator=generator)
    with torch.inference_mode():
        return tuple(model(latents, torch.tensor(step), encoder_hidden_states=states).sample
                     for model in (unet, fast_unet))


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_unet_and_vae_match_fp32(parts, precision):
    unet, vae = parts
    pipe = fast.accelerate(Pipe(unet, vae), "cpu", precision)
    generator = torch.Generator().manual_seed(1)  # fresh random inputs, not zeros
    expected, ours = unet_outputs(unet, pipe.unet, generator, 700)
    with torch.inference_mode():
        image = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
        encoded = vae.encode(image).latent_dist.mean
        torch.testing.assert_close(pipe.vae.encode(image).latent_dist.mean, encoded, rtol=0, atol=0.1)
        decoded = vae.decode(encoded).sample
        ours_decoded = pipe.vae.decode(encoded).sample
    assert ours.dtype == torch.float32 and ours_decoded.dtype == torch.float32  # callers see float32
    assert next(pipe.unet.parameters()).dtype == getattr(torch, precision)
    unet_error, vae_error = relative_l2(ours, expected), relative_l2(ours_decoded, decoded)
    print(precision, "relative L2 of the UNet, the VAE decoder:", unet_error, vae_error)
    assert 0 < unet_error <= 1e-2  # reduced precision really ran, within bf16 tolerance
    assert 0 < vae_error <= 2e-2  # the decoder's last layers work at pixel scale, where bf16 steps are coarser


def test_auto_changes_nothing_on_cpu(parts):
    # The default benchmark runs on CPU: its pipeline must stay the float32 one, hook-free.
    unet, vae = parts
    pipe = fast.accelerate(Pipe(unet, vae), "cpu")
    assert {p.dtype for p in pipe.unet.parameters()} == {torch.float32}
    assert not pipe.unet._forward_pre_hooks and not pipe.unet._forward_hooks
    assert fast.resolve_precision("auto", "cuda") == torch.bfloat16


@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
def test_memory_format_is_what_was_asked_for(parts, memory_format):
    # Each format can be asked for on any device (and compared: benchmarks/gpu_generation.py --parts ablation).
    pipe = fast.accelerate(Pipe(*parts), "cpu", "bfloat16", memory_format=memory_format)
    weight = pipe.unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == (memory_format == "channels_last")
    assert weight.is_contiguous() == (memory_format == "contiguous")


def test_unknown_settings_are_refused(parts):
    with pytest.raises(ValueError, match="memory format"):
        fast.accelerate(Pipe(*parts), "cpu", memory_format="nhwc")
    with pytest.raises(ValueError, match="precision"):
        fast.resolve_precision("int8", "cpu")
    with pytest.raises(ValueError, match="compile mode"):
        fast.accelerate(Pipe(*parts), "cpu", compile_mode="fastest")


def test_fused_qkv_projections_compute_the_same_unet(parts):
    unet, vae = parts
    pipe = fast.accelerate(Pipe(unet, vae), "cpu", "float32", fuse_qkv=True)
    fused = [m for m in pipe.unet.modules() if getattr(m, "fused_projections", False)]
    assert fused and {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    expected, ours = unet_outputs(unet, pipe.unet, torch.Generator().manual_seed(2), 300)
    assert relative_l2(ours, expected) < 1e-5  # the same sums, summed in another order at most


def test_fusing_refuses_to_drop_an_ip_adapter(parts):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    pipe = Pipe(*parts)
    processors = dict(pipe.unet.attn_processors)
    name = next(key for key in processors if key.endswith("attn2.processor"))
    attention = pipe.unet.get_submodule(name.removesuffix(".processor"))
    processors[name] = IPAdapterAttnProcessor2_0(attention.inner_dim, attention.cross_attention_dim)
    pipe.unet.set_attn_processor(processors)
    with pytest.raises(ValueError, match="fuse_qkv replaces the UNet's attention processors; IPAdapterAttnProcessor2_0"):
        fast.accelerate(pipe, "cpu", fuse_qkv=True)


def test_compile_tuning_sets_inductor_options_only_when_compiling_and_an_untuned_compile_puts_them_back(
        parts, monkeypatch):
    import torch._inductor.config as inductor

    untuned = {key: not value for key, value in fast.COMPILE_TUNING.items()}
    for key, value in untuned.items():
        monkeypatch.setattr(inductor, key, value)  # restored after the test
    monkeypatch.setattr(fast, "_untuned", {})
    fast.accelerate(Pipe(*parts), "cpu", compile_tuning=True)  # no compile: nothing to tune
    assert {key: getattr(inductor, key) for key in untuned} == untuned
    fast.accelerate(Pipe(*parts), "cpu", compile_mode="default", compile_tuning=True)  # lazy: compiles nothing yet
    assert {key: getattr(inductor, key) for key in untuned} == fast.COMPILE_TUNING
    fast.accelerate(Pipe(*parts), "cpu", compile_mode="default")
    assert {key: getattr(inductor, key) for key in untuned} == untuned
