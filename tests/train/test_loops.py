"""The training loops on their own (:mod:`mnist_hpo.train.loops`): a tiny model on tiny synthetic images, no MNIST.

What the loops promise their callers (the tasks, the objective, a rerun): every example once per epoch, the
epoch's loss as the mean over examples, the clean image as the target whatever the input, ``on_epoch`` called
once per epoch with the values the history keeps, the same run from the same seed, and a diverging loss
raised as :class:`NonFiniteLoss` before it reaches the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from mnist_hpo.data.datasets import to_float
from mnist_hpo.train.loops import (
    History,
    NonFiniteLoss,
    epoch_mean,
    evaluate_autoencoder,
    fit_autoencoder,
    make_optimizer,
    optimize_epoch,
    run_epochs,
    seed_everything,
    train_autoencoder_epoch,
)


def tiny_autoencoder() -> nn.Module:
    """784 -> 8 -> 784: trains in milliseconds, and the loops do not care what the model is."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 8),
        nn.ReLU(),
        nn.Linear(8, 28 * 28),
        nn.Sigmoid(),
        nn.Unflatten(1, (1, 28, 28)),
    )


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """100 uint8 [28, 28] images: 4 bright-block patterns with a little noise, so there is something to learn."""
    g = torch.Generator().manual_seed(0)
    protos = torch.zeros(4, 28, 28)
    for k in range(4):
        protos[k, 7 * k : 7 * k + 7, :] = 1.0
    noise = 0.1 * torch.rand(100, 28, 28, generator=g)
    return ((protos[torch.arange(100) % 4] + noise).clamp(0, 1) * 255).to(torch.uint8)


def fit(images, *, seed=0, epochs=6, lr=2e-2, on_epoch=None, corrupt=None):
    g = seed_everything(seed)
    model = tiny_autoencoder()
    opt = make_optimizer("Adam", model.parameters(), lr=lr, weight_decay=0.0)
    history = fit_autoencoder(
        model,
        opt,
        images[:80],
        images[80:],
        epochs=epochs,
        batch_size=8,
        generator=g,
        corrupt=corrupt,
        on_epoch=on_epoch,
    )
    return model, history


def test_training_lowers_the_loss_and_on_epoch_sees_each_epoch_as_the_history_keeps_it(images):
    seen = []
    model, history = fit(images, on_epoch=lambda *args: seen.append(args))
    assert len(history.train_loss) == len(history.val_loss) == len(history.seconds) == 6
    assert seen == [(e, history.train_loss[e], history.val_loss[e]) for e in range(6)]
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_loss[-1] < 0.5 * history.val_loss[0]
    assert all(s >= 0 for s in history.seconds)
    # the validation loss is the model's on the held-out images, as evaluate_autoencoder measures it
    assert history.val_loss[-1] == pytest.approx(evaluate_autoencoder(model, images[80:]), rel=1e-6)
    assert history.as_dict() == {
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "seconds": history.seconds,
    }


def test_the_same_seed_gives_the_same_run_and_another_seed_another(images):
    a_model, a = fit(images, seed=3, epochs=2)
    b_model, b = fit(images, seed=3, epochs=2)
    c_model, c = fit(images, seed=4, epochs=2)
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss
    for (name, wa), wb in zip(a_model.state_dict().items(), b_model.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert a.train_loss != c.train_loss


def test_an_on_epoch_that_raises_stops_training_after_that_epoch(images):
    class Prune(Exception):
        pass

    def on_epoch(epoch, train_loss, val_loss):
        if epoch == 1:
            raise Prune

    g = seed_everything(0)
    model = tiny_autoencoder()
    history = History()
    with pytest.raises(Prune):
        run_epochs(history, 5, train_one=lambda: 1.0, evaluate=lambda: {"val_loss": 2.0}, on_epoch=on_epoch)
    assert history.train_loss == [1.0, 1.0] and history.val_loss == [2.0, 2.0]  # the epoch it stopped on is kept
    with pytest.raises(Prune):
        fit_autoencoder(
            model,
            make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0),
            images[:32],
            images[32:48],
            epochs=5,
            batch_size=16,
            generator=g,
            on_epoch=on_epoch,
        )


def test_without_validation_images_the_validation_loss_is_nan(images):
    g = seed_everything(0)
    model = tiny_autoencoder()
    seen = []
    history = fit_autoencoder(
        model,
        make_optimizer("RMSprop", model.parameters(), lr=1e-3, weight_decay=0.0),
        images[:32],
        None,
        epochs=2,
        batch_size=16,
        generator=g,
        on_epoch=lambda e, t, v: seen.append(v),
    )
    assert len(history.train_loss) == 2 and all(math.isfinite(t) for t in history.train_loss)
    assert all(math.isnan(v) for v in history.val_loss + seen) and len(seen) == 2


def test_a_diverging_training_loss_raises_before_the_history_or_on_epoch_sees_it(images):
    seen = []
    with pytest.raises(NonFiniteLoss, match="training loss became nan"):
        fit(images, on_epoch=lambda *a: seen.append(a), corrupt=lambda x, g: x * float("nan"))
    assert seen == []
    with pytest.raises(NonFiniteLoss, match="training loss became inf"):
        epoch_mean(torch.tensor(float("inf")), 10)
    assert epoch_mean(torch.tensor(6.0), 4) == 1.5 and epoch_mean(torch.tensor(0.0), 0) == 0.0


def test_a_diverging_validation_loss_raises_and_is_not_recorded():
    history, seen = History(), []
    values = iter([0.5, float("inf")])
    with pytest.raises(NonFiniteLoss, match="validation loss became inf"):
        run_epochs(
            history,
            3,
            train_one=lambda: 1.0,
            evaluate=lambda: {"val_loss": next(values)},
            on_epoch=lambda *a: seen.append(a),
        )
    assert history.val_loss == [0.5] and history.train_loss == [1.0] and seen == [(0, 1.0, 0.5)]


def test_further_metrics_go_to_the_history_fields_of_their_names():
    @dataclass
    class WithAccuracy(History):
        val_accuracy: list[float] = field(default_factory=list)

    accuracies = iter([0.5, 0.75])
    history = run_epochs(
        WithAccuracy(),
        2,
        train_one=lambda: 1.0,
        evaluate=lambda: {"val_loss": 0.3, "val_accuracy": next(accuracies)},
        on_epoch=None,
    )
    assert history.val_accuracy == [0.5, 0.75] and history.val_loss == [0.3, 0.3]


def test_an_epoch_visits_every_example_once_and_averages_over_examples_not_batches():
    weight = nn.Parameter(torch.ones(()))
    model = nn.Linear(1, 1)  # only for train(): the loss below is the weight's
    model.eval()
    opt = torch.optim.SGD([weight], lr=0.0)  # the weight stays 1: each batch's loss is the mean of its indices
    visited = []

    def batch_loss(idx):
        visited.append(idx.tolist())
        return (idx.float() * weight).mean()

    mean = optimize_epoch(
        model, opt, batch_loss, 10, batch_size=4, generator=torch.Generator().manual_seed(1), device=torch.device("cpu")
    )
    assert model.training
    assert sorted(i for batch in visited for i in batch) == list(range(10))
    assert [len(b) for b in visited] == [4, 4, 2] and visited != [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # shuffled
    assert mean == pytest.approx(4.5)  # (0 + ... + 9) / 10, whichever two land in the short batch
    assert weight.grad is not None


def test_the_target_is_the_clean_image_whatever_the_input(images):
    class Records(nn.Module):
        """Answers a constant image and keeps what it was given."""

        def __init__(self):
            super().__init__()
            self.level = nn.Parameter(torch.tensor(0.0))
            self.inputs = []

        def forward(self, x):
            self.inputs.append(x.clone())
            return self.level.expand_as(x)

    model = Records()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_autoencoder_epoch(
        model,
        images,
        opt,
        batch_size=100,
        generator=torch.Generator().manual_seed(0),
        corrupt=lambda x, g: torch.zeros_like(x),
    )
    assert all(float(x.abs().max()) == 0.0 for x in model.inputs)  # the encoder saw the corrupted batch
    clean = to_float(images)
    assert loss == pytest.approx(float((clean**2).mean()), rel=1e-5)  # ... and was scored against the clean one
    assert evaluate_autoencoder(model, images) == pytest.approx(float((clean**2).mean()), rel=1e-5)
    assert not model.training
    shifted = torch.full_like(clean, 0.5)
    model.inputs.clear()
    evaluate_autoencoder(model, images, inputs=shifted, batch_size=30)
    assert torch.equal(torch.cat(model.inputs), shifted)  # inputs replace the images as input, in order


def test_make_optimizer_builds_the_named_one_or_names_the_choices():
    with pytest.raises(ValueError, match="unknown optimizer 'SGD'; choose one of Adam, RMSprop"):
        make_optimizer("SGD", [nn.Parameter(torch.zeros(1))], lr=1e-3, weight_decay=0.0)
    opt = make_optimizer("RMSprop", [nn.Parameter(torch.zeros(1))], lr=2e-3, weight_decay=1e-4)
    assert isinstance(opt, torch.optim.RMSprop)
    assert (opt.defaults["lr"], opt.defaults["weight_decay"]) == (2e-3, 1e-4)
