"""The CPU arithmetic mode: denormals flushed, and measured rather than assumed."""

import torch

from mnist_hpo.train.numerics import denormals_flushed, flush_denormals


def test_flush_mode_is_measured_on_a_denormal():
    try:
        assert flush_denormals(True) and denormals_flushed()
        tiny = torch.tensor([torch.finfo(torch.float32).tiny])
        assert (tiny / 4).item() == 0.0  # what the mode means: denormal results become zero
        flush_denormals(False)
        assert not denormals_flushed() and (tiny / 4).item() > 0.0
    finally:
        flush_denormals(False)


def test_every_task_trains_with_denormals_flushed(ae_cfg, tiny):
    from mnist_hpo.tasks import make_task

    flush_denormals(False)
    try:
        make_task(ae_cfg, tiny)
        assert denormals_flushed()
    finally:
        flush_denormals(False)
