"""The one way this project derives seeds from other seeds (numpy only, so the search spaces can use it too).

A seed is a :class:`numpy.random.SeedSequence` of integers; a string part (a parameter's
name, a purpose) enters as its CRC-32, so the same parts give the same seed on every machine.
Stored studies depend on these values: changing them would change every draw.
"""

from __future__ import annotations

import zlib

import numpy as np


def seed_sequence(*parts: int | str) -> np.random.SeedSequence:
    return np.random.SeedSequence([p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts])


def derive_seed(*parts: int | str) -> int:
    """One 32-bit seed from ``parts`` (e.g. study seed and trial number)."""
    return int(seed_sequence(*parts).generate_state(1)[0])
