"""IP-Adapter and IP-Adapter-Plus: decoupled cross-attention over a frozen Stable Diffusion.

The image prompt's features (the pooled embedding, or for Plus the penultimate
patch tokens) pass through the adapter's projection into extra tokens that
every cross-attention layer attends to with its own key/value weights; the
output is added to the text attention's, times ``scale``. Adapters are
artifacts (``trained:ip_adapter``, ``trained:ip_adapter_plus``) that the DAG
trains on the mini world's training renders, or files such as ``h94/IP-Adapter``'s
``models/ip-adapter_sd15`` in the paper suite; both load with
``pipe.load_ip_adapter``. ``references`` says how K reference images become
one image prompt: the mean of their features (default), one chosen by the
request's seed, or all of them (K × the image tokens).
"""
from __future__ import annotations

from pathlib import Path

from ipbench.diffusion.image_prompt import ImagePromptMethod, one_of, prompt_images
from ipbench.diffusion.method import SD_PARAMS
from ipbench.imageset import Request
from ipbench.params import Param
from ipbench.training.registry import Artifact, register_artifact
from methods import register_method

TRAINING = {"steps": 4000, "batch_size": 256, "lr": 1e-4, "seed": 0, "drop_text": 0.05, "drop_image": 0.05,
            "drop_both": 0.05, "weight_decay": 0.01, "time_limit_s": None, "n_images": None,
            "evaluation": {"n": 256}}
INPUTS = {"pipeline": "world:mini_sd", "train_set": "data:train_set"}

register_artifact(Artifact(
    "ip_adapter", "methods.ip_adapter:train_ip_adapter", inputs=INPUTS, defaults={**TRAINING, "num_tokens": 4},
    description="IP-Adapter (4 tokens from the pooled image embedding) on the mini SD"))
register_artifact(Artifact(
    "ip_adapter_plus", "methods.ip_adapter:train_ip_adapter_plus", inputs=INPUTS,
    defaults={**TRAINING, "num_tokens": 16},
    description="IP-Adapter-Plus (a resampler over the image tower's patch tokens) on the mini SD"))


def _train(plus: bool, out_dir, inputs, settings, device, threads):
    from ipbench.diffusion import ip_adapter
    from ipbench.world.train_data import load_npz

    data = load_npz(inputs["train_set"], workers=threads)
    evaluation = settings["evaluation"]["n"]
    keep = settings["n_images"] or len(data["images"]) - evaluation
    if keep < 1 or keep + evaluation > len(data["images"]):
        raise ValueError(f"config key training.{'ip_adapter_plus' if plus else 'ip_adapter'}: n_images {keep} plus "
                         f"evaluation.n {evaluation} do not fit the training set's {len(data['images'])} renders")
    # The last renders are held out: the adapter's validation loss is measured on them.
    held_out = {"images": data["images"][-evaluation:], "scenes": data["scenes"][-evaluation:]}
    data = {"images": data["images"][:keep], "scenes": data["scenes"][:keep]}
    options = {key: settings[key] for key in ("steps", "batch_size", "lr", "seed", "num_tokens", "drop_text",
                                              "drop_image", "drop_both", "weight_decay", "time_limit_s")}
    record = ip_adapter.train(out_dir, inputs["pipeline"], data, plus=plus, device=device, held_out=held_out,
                              **options)
    return record


def train_ip_adapter(out_dir, inputs, settings, device, subject=None, threads=1) -> dict:
    return _train(False, out_dir, inputs, settings, device, threads)


def train_ip_adapter_plus(out_dir, inputs, settings, device, subject=None, threads=1) -> dict:
    return _train(True, out_dir, inputs, settings, device, threads)


@register_method
class IPAdapter(ImagePromptMethod):
    name = "ip_adapter"
    plus = False
    params = {
        **ImagePromptMethod.params,
        "pretrained": Param("world:mini_sd", str, model=True, help=SD_PARAMS["pretrained"].help),
        "adapter": Param("trained:ip_adapter", str, model=True,
                         help="trained:<artifact>, or a folder / file of IP-Adapter weights"),
        "scale": Param(1.0, float, min=0.0, help="weight of the image-prompt attention (set_ip_adapter_scale)"),
        "references": Param("mean", str, choices=("mean", "one", "all"),
                            help="K references -> mean of their features, one chosen by seed, or all (K x tokens)"),
    }

    @classmethod
    def prepare(cls, out_dir: Path, settings: dict) -> dict:
        """The base pipeline's provenance plus the adapter file's sha256 (a Hub file is downloaded here)."""
        from ipbench.diffusion.ip_adapter import adapter_location
        from metrics.weights import sha256_file

        facts = super().prepare(out_dir, settings)
        folder, subfolder, weight, local = adapter_location(settings["adapter"])
        if local:
            path = Path(folder) / weight
            if not path.is_file():
                raise FileNotFoundError(f"config key methods.{cls.name}.params.adapter: no IP-Adapter weights at "
                                        f"{path}")
            return {**facts, "adapter": str(path), "adapter_sha256": sha256_file(path)}
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(folder, weight, subfolder=subfolder or None))
        revision = path.parents[len(Path(subfolder).parts)].name if subfolder else path.parent.name
        return {**facts, "adapter": settings["adapter"], "adapter_repo": folder, "adapter_revision": revision,
                "adapter_sha256": sha256_file(path)}

    def setup(self, pipe) -> None:
        from ipbench.diffusion import ip_adapter

        ip_adapter.load_adapter(pipe, self.settings["adapter"], self.settings["scale"])

    def image_embeds(self, requests: list[Request], data_dir: Path):
        """``ip_adapter_image_embeds`` for the pipeline: per request (k, ...) features, unconditional ones first."""
        import torch

        from ipbench.diffusion import ip_adapter

        pipe = self.pipeline()
        rows = []
        for request in requests:
            images = prompt_images(request, data_dir, self.name)
            if self.settings["references"] == "one":
                images = [images[one_of(request, len(images))]]
            features = ip_adapter.image_features(pipe, ip_adapter.pixel_values(pipe, images), self.plus)
            rows.append(features.mean(0, keepdim=True) if self.settings["references"] == "mean" else features)
        counts = {len(row) for row in rows}
        if len(counts) > 1:
            raise ValueError(f"{self.name}: references 'all' needs the same number of references per item in a "
                             f"batch, got {sorted(counts)}")
        embeds = torch.stack(rows)
        if self.settings["guidance_scale"] <= 1:
            return [embeds]
        pixel_shape = ip_adapter.pixel_values(pipe, prompt_images(requests[0], data_dir, self.name)[:1]).shape[1:]
        empty = ip_adapter.empty_image_features(pipe, embeds[0, :1], self.plus, pixel_shape).expand_as(embeds)
        return [torch.cat([empty, embeds])]

    def call_inputs(self, requests: list[Request], data_dir: Path) -> dict:
        return {**super().call_inputs(requests, data_dir), "ip_adapter_image_embeds": self.image_embeds(requests,
                                                                                                          data_dir)}


@register_method
class IPAdapterPlus(IPAdapter):
    name = "ip_adapter_plus"
    plus = True
    params = {**IPAdapter.params,
              "adapter": Param("trained:ip_adapter_plus", str, model=True,
                               help="trained:<artifact>, or a folder / file of IP-Adapter-Plus weights")}
