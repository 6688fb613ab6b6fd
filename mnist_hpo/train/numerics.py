"""CPU arithmetic mode for training: denormal floats flushed to zero.

With weight decay, the weights of a unit that stopped learning (a trial stuck on the mean
image) shrink geometrically until they are denormal floats, and x86 CPUs compute with
denormals many times slower: such trials ran ~3x slower per epoch than healthy ones in the
same study (BENCHMARKS.md, "Denormal floats"). Flushing them to zero costs nothing
measurable in the loss (a denormal is below 1.2e-38) but changes the last digits of one, so
each trial records the mode it trained under and a rerun uses that mode
(:mod:`mnist_hpo.artifacts.rerun`). GPUs are not affected by this setting.
"""

from __future__ import annotations

import torch


def flush_denormals(enabled: bool = True) -> bool:
    """Set whether CPU float arithmetic flushes denormals to zero (process-wide); returns whether it took."""
    return bool(torch.set_flush_denormal(enabled))


def denormals_flushed() -> bool:
    """Whether CPU arithmetic flushes denormals now, measured on one denormal value."""
    tiny = torch.tensor([torch.finfo(torch.float32).tiny], dtype=torch.float32)
    return bool((tiny / 4 * 1.0).item() == 0.0)
