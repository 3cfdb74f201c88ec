"""Seeds derived from what an image *is*, never from where it was computed.

``item_seed(suite, task, item_id, sample_index)`` is a stable 63-bit hash, so
an image does not depend on shard count, batch size, worker rank or GPU count.
"""
from __future__ import annotations

import hashlib


def item_seed(suite: str, task: str, item_id: str, sample_index: int) -> int:
    key = "\x1f".join((suite, task, item_id, str(int(sample_index)))).encode("utf-8")
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)
