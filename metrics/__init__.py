"""ipbench's metric engine: small functions over image sets, usable outside the DAG.

Import submodules directly (``metrics.fid``, ``metrics.lpips_metric``...);
this package itself imports nothing heavy.
"""
