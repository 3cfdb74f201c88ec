"""Harness internals shared by the workflow scripts: seeds, image sets, data, tables."""
