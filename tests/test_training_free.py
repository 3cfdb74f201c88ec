"""The training-free image-prompt methods, sdedit and reference_attn, on a tiny random pipeline.

Random weights: the images mean nothing. Checked: format, seeding and batch
invariance, that the image prompt and each param reach the output, the
reference-attention maths against plain torch, and the UNet passes per image.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ipbench.diffusion import sampling
from ipbench.imageset import Request
from tests.tiny_models import build_tiny_clip, build_tiny_pipeline, tiny_images
from tests.workflow_utils import REPO

PROMPT = "a b c"  # single characters: words the tiny tokenizer knows
SIZE = 64  # the tiny pipeline's resolution


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("training_free")
    return build_tiny_pipeline(root / "pipe", build_tiny_clip(root / "clip"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Condition PNGs: five 64x64 ones and a 40x48 one (centre-cropped and resized by the methods)."""
    folder = tmp_path_factory.mktemp("data")
    (folder / "conditions").mkdir()
    for k, image in enumerate(tiny_images(5, SIZE, SIZE, seed=1)):
        Image.fromarray(image).save(folder / "conditions" / f"ref{k}.png")
    Image.fromarray(tiny_images(1, 40, 48, seed=2)[0]).save(folder / "conditions" / "wide.png")
    return folder


def build(name: str, pipeline_dir, tmp_path_factory, **params):
    from methods import get_method

    # Two steps keep the tests fast; the default guidance (7.5) runs the unconditional half too.
    settings = {"pretrained": str(pipeline_dir), "num_inference_steps": 2, **params}
    return get_method(name)(tmp_path_factory.mktemp("prepared"), settings, "cpu")


@pytest.fixture(scope="module")
def sdedit(pipeline_dir, tmp_path_factory):
    return build("sdedit", pipeline_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def reference(pipeline_dir, tmp_path_factory):
    return build("reference_attn", pipeline_dir, tmp_path_factory)


@pytest.fixture(params=["sdedit", "reference"])
def method(request):
    return request.getfixturevalue(request.param)


def variation(item_id: str, seed: int, image: str = "ref0.png", prompt: str = PROMPT) -> Request:
    return Request(item_id, 0, seed, {"image": f"conditions/{image}", "prompt": prompt})


def subject(item_id: str, seed: int, images=("ref1.png", "ref2.png", "ref3.png")) -> Request:
    return Request(item_id, 0, seed, {"images": [f"conditions/{name}" for name in images], "prompt": PROMPT,
                                      "subject": "blob"})


def batch() -> list[Request]:
    return [variation("v0", 11), subject("s0", 12), variation("v1", 13, "wide.png"), subject("s1", 14)]


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def count_unet_calls(pipe) -> tuple:
    calls = []
    handle = pipe.unet.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    return calls, handle


# ---------------------------------------------------------------- both methods


def test_registry_lists_both_without_torch():
    code = ("import sys, methods; found = methods.available_methods(); "
            "print(found['sdedit'].tasks, found['reference_attn'].tasks, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('variation', 'subject') ('variation', 'subject') False"


def test_one_uint8_image_per_request_at_the_pipeline_size(method, data_dir):
    images = method.generate(batch(), data_dir)
    assert len(images) == 4
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
    assert len({image.tobytes() for image in images}) == 4


def test_images_are_seeded_per_request_not_per_batch_position(method, data_dir):
    requests = batch()
    first = method.generate(requests, data_dir)
    assert all(np.array_equal(a, b) for a, b in zip(first, method.generate(requests, data_dir)))
    reversed_ = method.generate(requests[::-1], data_dir)[::-1]
    # The UNet's CPU kernels round the last bits (~1e-6) differently by batch row, which can move a pixel
    # across a rounding boundary: exact equality does not hold, one level of 255 does. Misaligned seeds or
    # reference rows would change the images entirely.
    assert all(max_diff(a, b) <= 1 for a, b in zip(first, reversed_))


def test_a_request_without_an_image_prompt_names_the_item(method, data_dir):
    with pytest.raises(ValueError, match="'t2i-7' has neither condition.image nor condition.images"):
        method.generate([variation("v0", 1), Request("t2i-7", 0, 2, {"prompt": PROMPT})], data_dir)


# ---------------------------------------------------------------- sdedit


def vae_reconstruction(method, request: Request, data_dir) -> np.ndarray:
    """Decode of the init image's posterior sample, drawn as the pipeline draws it (the request's generator)."""
    pipe = method.pipeline()
    image = method.call_inputs([request], data_dir)["image"][0]
    with torch.inference_mode():
        posterior = pipe.vae.encode(pipe.image_processor.preprocess(image)).latent_dist
        decoded = pipe.vae.decode(posterior.sample(sampling.generators([request], "cpu")[0])).sample
    return sampling.to_uint8(pipe.image_processor.postprocess(decoded, output_type="np"))[0]


def test_sdedit_moves_away_from_the_prompt_as_strength_grows(pipeline_dir, tmp_path_factory, data_dir):
    request, other = variation("v", 5, "ref0.png"), variation("v", 5, "ref1.png")
    methods = {strength: build("sdedit", pipeline_dir, tmp_path_factory, num_inference_steps=10, strength=strength)
               for strength in (0.1, 0.3, 0.6)}
    own, others = (vae_reconstruction(methods[0.1], r, data_dir).astype(float) for r in (request, other))
    distance = {s: np.abs(m.generate([request], data_dir)[0] - own).mean() for s, m in methods.items()}
    assert distance[0.1] < distance[0.3] < distance[0.6]
    # One DDIM step from t=1 stays nearer its own prompt's reconstruction than another prompt's.
    low = methods[0.1].generate([request], data_dir)[0]
    assert distance[0.1] < 0.8 * np.abs(low - others).mean()


def test_sdedit_strength_changes_the_output(sdedit, pipeline_dir, tmp_path_factory, data_dir):
    full = build("sdedit", pipeline_dir, tmp_path_factory, strength=1.0)
    request = variation("v", 3)
    assert max_diff(sdedit.generate([request], data_dir)[0], full.generate([request], data_dir)[0]) > 10


def test_sdedit_takes_the_reference_chosen_by_the_seed(sdedit, data_dir):
    from ipbench.diffusion.image_prompt import one_of

    images = ("ref1.png", "ref2.png", "ref3.png")
    for seed in (20, 21):
        chosen = images[one_of(subject("s", seed), len(images))]
        assert np.array_equal(sdedit.generate([subject("s", seed, images)], data_dir)[0],
                              sdedit.generate([variation("s", seed, chosen)], data_dir)[0])


def test_sdedit_runs_int_strength_times_steps_unet_passes(sdedit, data_dir):
    calls, handle = count_unet_calls(sdedit.pipeline())
    try:
        sdedit.generate([variation("v", 1), variation("w", 2)], data_dir)  # strength 0.6 x 2 steps -> 1
    finally:
        handle.remove()
    assert calls == [4]  # one CFG pass: [uncond 2; cond 2]


def test_sdedit_strength_is_checked(pipeline_dir, tmp_path):
    from methods.sdedit import SDEdit

    with pytest.raises(ValueError, match=r"methods\.sdedit\.params\.strength: 1\.5 is above"):
        SDEdit(tmp_path, {"pretrained": str(pipeline_dir), "strength": 1.5})
    with pytest.raises(ValueError, match=r"methods\.sdedit\.params\.strength: 0\.04 x 20 steps runs no"):
        SDEdit(tmp_path, {"pretrained": str(pipeline_dir), "strength": 0.04})
    assert SDEdit(tmp_path, {"pretrained": str(pipeline_dir)}).settings["strength"] == 0.6


# ---------------------------------------------------------------- reference_attn: the maths


def manual_attention(attn, x, context):
    """softmax(Q K^T / sqrt(d)) V per head, then the output projection, in plain torch ops."""
    heads = attn.heads
    q = torch.nn.functional.linear(x, attn.to_q.weight, attn.to_q.bias)
    k = torch.nn.functional.linear(context, attn.to_k.weight, attn.to_k.bias)
    v = torch.nn.functional.linear(context, attn.to_v.weight, attn.to_v.bias)
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, -1).permute(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    out = (weights @ v).permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1)
    return torch.nn.functional.linear(out, attn.to_out[0].weight, attn.to_out[0].bias)


@pytest.fixture()
def attention():
    from diffusers.models.attention_processor import Attention

    from methods.reference_attn import ReferenceBank, ReferenceSelfAttention

    torch.manual_seed(0)
    attn = Attention(query_dim=8, heads=2, dim_head=4, bias=True)
    bank = ReferenceBank(style_fidelity=0.3, adain=False)
    attn.set_processor(ReferenceSelfAttention(bank, "layer"))
    return attn, bank


def write_then_read(attn, bank, reference, x, uncond=0):
    bank.mode = "write"
    written = attn(reference)
    bank.mode, bank.uncond = "read", uncond
    return written, attn(x)


def test_read_attends_to_own_and_reference_tokens(attention):
    attn, bank = attention
    x, reference = torch.randn(2, 6, 8), torch.randn(2, 5, 8)
    written, read = write_then_read(attn, bank, reference, x)
    torch.testing.assert_close(written, manual_attention(attn, reference, reference), atol=1e-5, rtol=0)
    torch.testing.assert_close(read, manual_attention(attn, x, torch.cat([x, reference], 1)), atol=1e-5, rtol=0)
    assert not torch.allclose(read, manual_attention(attn, x, x), atol=1e-3)


def test_the_unconditional_rows_blend_in_plain_self_attention(attention):
    attn, bank = attention
    x, reference = torch.randn(4, 6, 8), torch.randn(4, 5, 8)
    _, read = write_then_read(attn, bank, reference, x, uncond=2)
    extended = manual_attention(attn, x, torch.cat([x, reference], 1))
    own = manual_attention(attn, x, x)
    torch.testing.assert_close(read[:2], 0.3 * own[:2] + 0.7 * extended[:2], atol=1e-5, rtol=0)
    torch.testing.assert_close(read[2:], extended[2:], atol=1e-5, rtol=0)


def test_a_reference_equal_to_the_image_leaves_attention_unchanged(attention):
    # Duplicating every key and value doubles each softmax term and its normaliser alike.
    attn, bank = attention
    x = torch.randn(2, 6, 8)
    _, read = write_then_read(attn, bank, x, x)
    torch.testing.assert_close(read, manual_attention(attn, x, x), atol=1e-5, rtol=0)


def test_adain_matches_the_pooled_reference_statistics():
    from methods.reference_attn import ReferenceBank

    bank = ReferenceBank(style_fidelity=0.0, adain=True)
    first, second, x = torch.randn(2, 3, 4, 4) * 2 + 1, torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4) - 3
    bank.mode = "write"
    for reference in (first, second):
        assert bank.match_statistics("resnet", None, (), reference) is None
    bank.mode = "read"
    matched = bank.match_statistics("resnet", None, (), x)
    pooled = torch.cat([first, second], dim=3)  # both references' positions together
    torch.testing.assert_close(matched.mean((2, 3)), pooled.mean((2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(matched.std((2, 3), correction=0), pooled.std((2, 3), correction=0),
                               atol=1e-4, rtol=0)


# ---------------------------------------------------------------- reference_attn: the method


def record(method, run) -> torch.Tensor:
    """The noise predictions of the real (not reference) UNet passes of ``run()``: (passes, rows, C, h, w).

    A random UNet's self-attention moves the decoded pixels by a few levels at most, but its
    predictions by far more than the ~1e-6 its kernels round by: they show what reaches the UNet.
    """
    out = []
    handle = method.pipeline().unet.register_forward_hook(
        lambda module, args, output: out.append(output[0]) if method.bank.mode != "write" else None)
    try:
        run()
    finally:
        handle.remove()
    return torch.stack(out)


def predictions(method, requests: list[Request], data_dir) -> torch.Tensor:
    return record(method, lambda: method.generate(requests, data_dir))


def plain_sd(method, request: Request) -> np.ndarray:
    """The method's pipeline called directly, as sd_text calls it."""
    with torch.inference_mode():
        images = method.pipeline()(prompt=[request.condition["prompt"]], num_inference_steps=2, output_type="np",
                                   generator=sampling.generators([request], "cpu")).images
    return sampling.to_uint8(images)[0]


def changed(a: torch.Tensor, b: torch.Tensor) -> bool:
    return float((a - b).abs().max()) > 1e-3


def test_outside_its_calls_the_pipeline_is_plain_sd(reference, pipeline_dir, tmp_path_factory, data_dir):
    sd_text = build("sd_text", pipeline_dir, tmp_path_factory)
    request = variation("v", 9)
    expected = sd_text.generate([Request("v", 0, 9, {"prompt": PROMPT})], data_dir)[0]
    assert np.array_equal(plain_sd(reference, request), expected)
    assert changed(predictions(reference, [request], data_dir), record(reference, lambda: plain_sd(reference, request)))


def test_the_image_prompt_reaches_the_predictions(reference, data_dir):
    first, again, other = (predictions(reference, [variation("v", 4, image)], data_dir)
                           for image in ("ref0.png", "ref0.png", "ref4.png"))
    assert torch.equal(first, again) and changed(first, other)


def test_setup_is_idempotent_and_detach_restores_plain_sd(pipeline_dir, tmp_path_factory, data_dir):
    from diffusers.models.attention_processor import AttnProcessor2_0

    from methods.reference_attn import ReferenceSelfAttention

    method = build("reference_attn", pipeline_dir, tmp_path_factory, adain=True)
    pipe = method.pipeline()
    processors = pipe.unet.attn_processors
    attn1 = [name for name in processors if name.endswith("attn1.processor")]
    assert attn1 and all(isinstance(processors[name], ReferenceSelfAttention) for name in attn1)
    assert not any(isinstance(processors[name], ReferenceSelfAttention) for name in processors if name not in attn1)
    request = variation("v", 6)
    before = method.generate([request], data_dir)[0]
    method.setup(pipe)  # again: the old hooks and processors go first
    assert len(pipe.unet._forward_pre_hooks) == 1
    assert np.array_equal(method.generate([request], data_dir)[0], before)
    method.bank.detach()
    assert all(isinstance(p, AttnProcessor2_0) for p in pipe.unet.attn_processors.values())
    assert not pipe.unet._forward_pre_hooks
    assert not any(module._forward_hooks for module in pipe.unet.modules())


def test_style_fidelity_matters_only_under_guidance(pipeline_dir, tmp_path_factory, data_dir):
    request = variation("v", 8)
    for guidance, differs in ((1.0, False), (7.5, True)):
        low, high = (predictions(build("reference_attn", pipeline_dir, tmp_path_factory, guidance_scale=guidance,
                                       style_fidelity=value), [request], data_dir) for value in (0.0, 1.0))
        assert changed(low, high) if differs else torch.equal(low, high)


def test_adain_and_all_references_change_the_predictions(reference, pipeline_dir, tmp_path_factory, data_dir):
    adain = build("reference_attn", pipeline_dir, tmp_path_factory, adain=True)
    every = build("reference_attn", pipeline_dir, tmp_path_factory, references="all")
    single, three = variation("v", 2), subject("s", 2)
    assert changed(predictions(adain, [single], data_dir), predictions(reference, [single], data_dir))
    assert changed(predictions(every, [three], data_dir), predictions(reference, [three], data_dir))
    # With one image prompt "all" is "one": the same reference, noise and passes.
    assert torch.equal(predictions(every, [single], data_dir), predictions(reference, [single], data_dir))


def test_reference_passes_per_step(reference, pipeline_dir, tmp_path_factory, data_dir):
    every = build("reference_attn", pipeline_dir, tmp_path_factory, references="all")
    requests = [subject("s3", 3), variation("v", 4), subject("s2", 5, ("ref1.png", "ref4.png"))]
    for method, expected in ((reference, [6, 6] * 2),  # one call: a write pass before each real pass
                             # "all": one call per reference count (1, 2, 3), each with count + 1 passes per step
                             (every, [2] * 4 + [2] * 6 + [2] * 8)):
        calls, handle = count_unet_calls(method.pipeline())
        try:
            images = method.generate(requests, data_dir)
        finally:
            handle.remove()
        assert calls == expected and len(images) == 3


def test_a_request_alone_in_its_reference_count_is_its_image_alone(pipeline_dir, tmp_path_factory, data_dir):
    every = build("reference_attn", pipeline_dir, tmp_path_factory, references="all")
    pair = subject("s2", 5, ("ref1.png", "ref4.png"))
    mixed = every.generate([subject("s3", 3), pair, variation("v", 4)], data_dir)
    assert np.array_equal(mixed[1], every.generate([pair], data_dir)[0])


def test_reference_params_are_checked(pipeline_dir, tmp_path):
    from methods.reference_attn import ReferenceAttention

    with pytest.raises(ValueError, match=r"methods\.reference_attn\.params\.style_fidelity: 1\.5 is above"):
        ReferenceAttention(tmp_path, {"pretrained": str(pipeline_dir), "style_fidelity": 1.5})
    with pytest.raises(ValueError, match=r"methods\.reference_attn\.params\.references: 'some' is not one of"):
        ReferenceAttention(tmp_path, {"pretrained": str(pipeline_dir), "references": "some"})
    defaults = ReferenceAttention(tmp_path, {"pretrained": str(pipeline_dir)}).settings
    assert {key: defaults[key] for key in ("style_fidelity", "adain", "references", "caption")} == {
        "style_fidelity": 0.5, "adain": False, "references": "one", "caption": True}
