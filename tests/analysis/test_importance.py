"""Which settings matter: parameter importance and the latent-size table, in `show` and on their own."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from mnist_hpo import cli
from mnist_hpo.analysis.importance import importance_figure, importance_lines, latent_rows, param_importance
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import open_storage

WD = (0.0, 1e-6, 1e-5, 5e-5, 1e-4, 2e-4, 3e-4)
SPACE = {
    "latent_dim": CategoricalDistribution(list(range(2, 10))),
    "weight_decay": CategoricalDistribution(WD),
    "optimizer": CategoricalDistribution(["Adam", "RMSprop"]),
    "lr": CategoricalDistribution([3e-4, 9e-4, 1.9e-3]),
    "nh1": CategoricalDistribution([64, 87, 137]),
}


def fake_study(url: str, name: str, n: int, *, seed: int = 0) -> optuna.Study:
    """An autoencoder-like study whose value is decided by the L2 value alone.

    A large weight decay leaves the trial on the mean-image plateau (0.067); below it, the smaller the better.
    """
    rng = random.Random(seed)
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    study.set_user_attr("model", "autoencoder")  # as run_study records it: the report's headers are the family's
    for _ in range(n):
        params = {k: rng.choice(d.choices) for k, d in SPACE.items()}
        plateau = params["weight_decay"] >= 1e-4
        value = 0.0670 if plateau else 0.0170 + 100 * params["weight_decay"]
        value += rng.uniform(0, 1e-5)  # small, and unrelated to any parameter
        study.add_trial(
            optuna.create_trial(
                params=params, distributions=SPACE, value=value, intermediate_values={0: value + 0.01, 1: value}
            )
        )
    return study


def test_weight_decay_ranks_first_when_it_decides_the_value(storage):
    study = fake_study(storage, "wd-decides", 40)
    imp = param_importance(study)
    assert imp is not None and imp.trials == 40
    assert imp.ranking()[0] == "weight_decay"
    assert max(imp.ped_anova, key=imp.ped_anova.get) == "weight_decay"
    assert sum(imp.fanova.values()) == pytest.approx(1.0) and sum(imp.ped_anova.values()) == pytest.approx(1.0)
    assert param_importance(study) == imp  # seeded: the same study, the same numbers


def test_too_few_complete_trials_is_one_line(storage):
    study = fake_study(storage, "few", 4)
    # A pruned trial has no value: it does not count.
    study.add_trial(
        optuna.create_trial(
            params={k: d.choices[0] for k, d in SPACE.items()},
            distributions=SPACE,
            state=TrialState.PRUNED,
            intermediate_values={0: 0.1},
        )
    )
    assert param_importance(study) is None
    assert importance_lines(study) == [
        "importance: 4 complete trials, too few to rank the parameters (needs at least 5)"
    ]


def test_latent_rows_best_per_size(storage):
    study = optuna.create_study(study_name="latent", storage=open_storage(storage))
    d = {"latent_dim": CategoricalDistribution([2, 4, 9])}
    for latent, value, state in (
        (2, 0.05, TrialState.COMPLETE),
        (9, 0.03, TrialState.COMPLETE),
        (2, 0.04, TrialState.COMPLETE),
        (9, None, TrialState.PRUNED),
        (4, None, TrialState.PRUNED),
    ):
        study.add_trial(
            optuna.create_trial(
                params={"latent_dim": latent}, distributions=d, value=value, state=state, intermediate_values={0: 0.2}
            )
        )
    assert latent_rows(study) == [[2, 0.04, 2, 2, 0], [4, None, None, 0, 1], [9, 0.03, 1, 1, 1]]
    other = optuna.create_study(study_name="no-latent", storage=open_storage(storage))
    other.add_trial(
        optuna.create_trial(params={"nh1": 5}, distributions={"nh1": CategoricalDistribution([5])}, value=1.0)
    )
    assert latent_rows(other) is None


def test_importance_figure_is_drawn(storage, tmp_path):
    import numpy as np
    from PIL import Image

    imp = param_importance(fake_study(storage, "fig", 12))
    path = importance_figure(imp, tmp_path / "imp.png", "study 'fig'")
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # bars, labels, legend: not a blank canvas


def test_show_prints_ranking_and_latent_table(storage, capsys):
    fake_study(storage, "shown", 30)
    assert cli.main(["show", "shown", "--storage", storage]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("importance on 30 complete trials"))
    assert "weight_decay (L2)" in lines[head + 1] and lines[head + 1].strip().startswith("1.")
    assert "best value per latent size" in out
    assert len([line for line in lines[head:] if line.strip().startswith(("1.", "2.", "3.", "4.", "5."))]) == 5


def test_show_with_too_few_trials(storage, capsys):
    fake_study(storage, "short", 3)
    assert cli.main(["show", "short", "--storage", storage]) == 0
    assert "importance: 3 complete trials, too few to rank the parameters" in capsys.readouterr().out


def test_importance_of_a_real_tiny_study(storage, tiny, ae_cfg, capsys):
    study = run_study(ae_cfg.with_overrides(trials=6), storage_url=storage, data=tiny, progress=False)
    imp = param_importance(study)
    assert imp is not None and imp.trials == 6
    assert set(imp.ranking()) == {"latent_dim", "weight_decay", "optimizer", "lr", "nh1"}
    assert cli.main(["show", "ae-test", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "importance on 6 complete trials" in out and "best value per latent size" in out


def test_constant_objective_is_one_line_not_a_crash(storage, capsys):
    """fANOVA has no variance to share out when every trial scored the same (it raises): say so instead."""
    study = optuna.create_study(study_name="flat", storage=open_storage(storage))
    for i in range(6):
        study.add_trial(
            optuna.create_trial(params={"nh1": [64, 87, 137][i % 3]}, distributions={"nh1": SPACE["nh1"]}, value=0.067)
        )
    assert param_importance(study) is None
    assert cli.main(["show", "flat", "--storage", storage]) == 0
    assert "importance: all 6 complete trials have the same value; there is nothing to rank" in capsys.readouterr().out
