"""The fast generation path: the UNet and VAE in bfloat16 inside a float32 pipeline.

``accelerate`` is applied by every ``DiffusersMethod`` after its add-ons are loaded. With
``precision: auto`` it changes nothing on a CPU (the default benchmark's images stay byte-identical:
bfloat16 convolutions are slower there) and, on CUDA, casts the UNet and the VAE to bfloat16. Only
those two run in reduced precision: hooks cast their floating inputs to bfloat16 and their outputs
back to float32, so the text and image encoders, the latents, the
classifier-free guidance sum and the DDIM updates stay float32 and each request keeps its own seeded
float32 noise. Nothing approximates the method: every step, every UNet evaluation is still computed.
diffusers' default attention is already PyTorch's SDPA, which picks flash attention for bfloat16 on
GPUs that have it; the pipeline already runs the conditional and unconditional halves as one batch and
decodes the whole batch at once. ``compile`` adds ``torch.compile`` of the UNet (about a minute per
batch shape and process for SD1.5 on an H200, then 1.5x the images/s: benchmarks/README.md).
"""
from __future__ import annotations

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
# Memory format of the reduced-precision UNet and VAE. Contiguous is the default: on an H200, channels_last
# made SD1.5's UNet slower (2.90 against 3.29 img/s), its layout copies taking a quarter of the GPU time
# (benchmarks/README.md, each change alone).
MEMORY_FORMATS = ("contiguous", "channels_last")
# torch.compile modes for the UNet; "off" is the default until GPU numbers show the compile time pays
# (benchmarks/README.md). "reduce-overhead" and "max-autotune" also capture CUDA graphs.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_precision(precision: str, device):
    """The weights' torch dtype for ``precision`` on ``device`` ("auto": bfloat16 on CUDA, float32 elsewhere)."""
    import torch  # here, not above: the DAG imports the methods' parameters without torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, precision)


def _cast(value, dtype, channels_last: bool):
    """Floating tensors in ``value`` (nested in tuples, lists, dicts) cast to ``dtype``; the rest as is."""
    import torch

    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        if channels_last and value.dim() == 4:
            return value.to(dtype=dtype, memory_format=torch.channels_last)
        return value.to(dtype)
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(item, dtype, channels_last) for item in value)
    if isinstance(value, dict):  # also diffusers' BaseOutput, whose __setitem__ keeps its attributes in step
        for key in list(value):
            value[key] = _cast(value[key], dtype, channels_last)
        return value
    return value


def run_in(module, dtype, channels_last: bool) -> None:
    """Cast ``module`` to ``dtype`` and make it take and give float32: callers see a float32 module."""
    import torch

    module.to(dtype=dtype)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    module.register_forward_pre_hook(
        lambda _, args, kwargs: (_cast(args, dtype, channels_last), _cast(kwargs, dtype, channels_last)),
        with_kwargs=True)
    module.register_forward_hook(lambda _, args, output: _cast(output, torch.float32, False))


def accelerate(pipe, device, precision: str = "auto", compile_mode: str = "off",
               memory_format: str = "contiguous"):
    """``pipe`` with its UNet and VAE in the precision asked for; unchanged for float32 without compile."""
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {compile_mode!r} is not one of {', '.join(COMPILE_MODES)}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory format {memory_format!r} is not one of {', '.join(MEMORY_FORMATS)}")
    import torch

    dtype = resolve_precision(precision, device)
    if dtype != torch.float32:
        channels_last = memory_format == "channels_last"
        run_in(pipe.unet, dtype, channels_last)
        # AutoencoderKL.encode/decode are not forward(): its parts (encoder, decoder, (post_)quant_conv) are.
        for part in pipe.vae.children():
            run_in(part, dtype, channels_last)
    if compile_mode != "off":
        pipe.unet.compile(mode=compile_mode, fullgraph=True)
    return pipe
