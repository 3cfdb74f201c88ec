"""The one diffusion layer every diffusers-based method shares.

``pipelines`` loads a pipeline from a resolved model source (dtype, device,
scheduler) and describes that source for provenance; ``sampling`` turns
requests into seeded generators and pipeline output into uint8;
``method.DiffusersMethod`` chains those steps so a method file holds only what
is particular to it. Add-ons (IP-Adapter, LoRA, Textual Inversion, ControlNet)
load onto the same pipeline through diffusers' own mixins.
"""
