"""The mini world: synthetic 64x64 scenes with exact ground truth, their analyzers and datasets.

Modules: ``render`` (Scene, render, captions, sampling), ``analyze`` (attributes of any
64x64 image, subject fidelity), ``datasets`` (PNG folders + attributes.csv).
"""
