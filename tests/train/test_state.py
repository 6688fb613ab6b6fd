"""Training states as safetensors plus JSON (mnist_hpo/train/state.py): what goes in comes out, and nothing else."""

from __future__ import annotations

import json

import pytest
import torch

from mnist_hpo.train.state import TrainingState, capture, decode, encode, restore, state_bytes, state_from_bytes


def _trained(lr: float = 1e-3) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.9), weight_decay=1e-4)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).pow(2).sum().backward()
        opt.step()
    return net, opt


def test_state_encoding_round_trips_optimizer_state():
    _, opt = _trained()
    tensors: dict = {}
    tree = json.loads(json.dumps(encode(opt.state_dict(), "opt", tensors)))
    decoded = decode(tree, tensors)
    original = opt.state_dict()
    assert decoded["param_groups"] == original["param_groups"]  # tuples (betas) and ints survive JSON
    assert set(decoded["state"]) == {0, 1, 2, 3}
    for pid, state in original["state"].items():
        for key, value in state.items():
            assert torch.equal(decoded["state"][pid][key], value)
    fresh = torch.optim.Adam(_trained()[0].parameters(), lr=1e-3, betas=(0.5, 0.9))
    fresh.load_state_dict(decoded)  # accepted by torch as-is


def test_a_state_survives_its_bytes_and_restores_weights_and_moments():
    net, opt = _trained()
    data = state_bytes(capture(net, {"adam": opt}, {"epoch": 3}))
    assert data == state_bytes(capture(net, {"adam": opt}, {"epoch": 3}))  # the same state, the same bytes
    state = state_from_bytes(data)
    assert state.extras == {"epoch": 3}
    other, other_opt = _trained(lr=5e-2)  # other hyperparameters: they are kept, the rest is the state's
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    restore(state, other, {"adam": other_opt})
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    for pid, moments in opt.state_dict()["state"].items():
        for key, value in moments.items():
            assert torch.equal(other_opt.state_dict()["state"][pid][key], value)
    assert other_opt.param_groups[0]["lr"] == 5e-2 and other_opt.param_groups[0]["betas"] == (0.5, 0.9)


def test_a_state_for_other_optimizers_or_another_file_is_refused():
    net, opt = _trained()
    state = capture(net, {"adam": opt})
    with pytest.raises(ValueError, match=r"holds optimizers \['adam'\], the model has \['sgd'\]"):
        restore(state, net, {"sgd": torch.optim.SGD(net.parameters(), lr=0.1)})
    data = state_bytes(state)
    for bad in (b"", b"not a state at all", data[:-3], b"\x00" * 8 + data[8:]):
        with pytest.raises(ValueError, match="not a training state"):
            state_from_bytes(bad)
    from safetensors.torch import save

    with pytest.raises(ValueError, match="not a training state"):  # a safetensors file, but no state's metadata
        state_from_bytes(save({"x": torch.zeros(2)}))
    assert TrainingState().model_weights() == {}
