"""Published numbers of the paper protocols, as data: protocol -> paper row -> metric -> value.

Metric keys are ipbench's: ``clip_t``, ``clip_i``, ``dino``, ``fid``. A metric
a paper does not report for a row (DreamBench's real images have no CLIP-T)
is absent, not zero. Values are copied as printed; see each citation for the
exact protocol they were measured under.
"""
from __future__ import annotations

CITATIONS = {
    "ip_adapter_table1": (
        "Ye et al., IP-Adapter: Text Compatible Image Prompt Adapter for Text-to-Image Diffusion Models, "
        "arXiv 2308.06721, §4.2.1 and Table 1: COCO 2017 val (5,000 images), 4 samples per image prompt; "
        "CLIP-T (against the prompt image's caption) and CLIP-I, CLIP ViT-L/14, raw cosine similarity."),
    "dreambench": (
        "Ruiz et al., DreamBooth: Fine Tuning Text-to-Image Diffusion Models for Subject-Driven Generation, "
        "arXiv 2208.12242 (CVPR 2023), Table 1: DreamBench, 30 subjects x 25 prompts, 4 images per prompt; "
        "DINO and CLIP-I against the subject's real images, CLIP-T against the prompt."),
    "coco_fid30k": (
        "Zero-shot FID-30k on MS-COCO at 256x256: GLIDE (Nichol et al., arXiv 2112.10741), DALL-E 2 "
        "(Ramesh et al., arXiv 2204.06125, unCLIP with the diffusion prior) and Imagen (Saharia et al., "
        "arXiv 2205.11487) as tabulated in Imagen's Table 1; DeepFloyd IF from the DeepFloyd IF model "
        "card (github.com/deep-floyd/IF)."),
}

# The ipbench task each protocol runs as.
TASKS = {"ip_adapter_table1": "variation", "dreambench": "subject", "coco_fid30k": "text2image"}

PUBLISHED = {
    "ip_adapter_table1": {
        "Open unCLIP": {"clip_t": 0.608, "clip_i": 0.858},
        "Kandinsky-2-1": {"clip_t": 0.599, "clip_i": 0.855},
        "Versatile Diffusion": {"clip_t": 0.587, "clip_i": 0.830},
        "SD Image Variations": {"clip_t": 0.548, "clip_i": 0.760},
        "SD unCLIP": {"clip_t": 0.584, "clip_i": 0.810},
        "Uni-ControlNet (Global)": {"clip_t": 0.506, "clip_i": 0.736},
        "T2I-Adapter (Style)": {"clip_t": 0.485, "clip_i": 0.648},
        "ControlNet Shuffle": {"clip_t": 0.421, "clip_i": 0.616},
        "IP-Adapter (22M parameters)": {"clip_t": 0.588, "clip_i": 0.828},
    },
    "dreambench": {
        "Real images": {"dino": 0.774, "clip_i": 0.885},
        "DreamBooth (Imagen)": {"dino": 0.696, "clip_i": 0.812, "clip_t": 0.306},
        "DreamBooth (SD)": {"dino": 0.668, "clip_i": 0.803, "clip_t": 0.305},
        "Textual Inversion (SD)": {"dino": 0.569, "clip_i": 0.780, "clip_t": 0.255},
    },
    "coco_fid30k": {
        "GLIDE": {"fid": 12.24},
        "DALL-E 2 / unCLIP diffusion prior": {"fid": 10.39},
        "Imagen": {"fid": 7.27},
        "DeepFloyd IF": {"fid": 6.66},
    },
}


def published(protocol: str, row: str, metric: str) -> float | None:
    """The published value, or None where the paper reports none for that row; unknown names are errors."""
    if protocol not in PUBLISHED:
        raise KeyError(f"unknown protocol {protocol!r}; known: {', '.join(PUBLISHED)}")
    if row not in PUBLISHED[protocol]:
        raise KeyError(f"{protocol}: unknown row {row!r}; known: {', '.join(PUBLISHED[protocol])}")
    return PUBLISHED[protocol][row].get(metric)
