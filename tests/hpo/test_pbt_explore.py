"""Exploit and explore (mnist_hpo/hpo/pbt/_explore.py): who copies whom, and what explore may change."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from optuna.trial import TrialState

from mnist_hpo.core.schema import ParamSpec
from mnist_hpo.core.space import resolve_space
from mnist_hpo.hpo.pbt import NoParent, Population, explore, plan, ranking

PARAMS = [
    {"latent_dim": d, "nh1": 60 + d, "optimizer": "Adam", "lr": lr, "weight_decay": wd}
    for d, lr, wd in [(2, 1e-3, 0.0), (3, 2e-3, 1e-5), (4, 3e-3, 2e-5), (5, 4e-3, 3e-5)]
]


def generation0(segment, values, **failed):
    """Generation 0 of 4 members with these values (lower is better); ``failed={member: state}``."""
    return [
        segment(
            m,
            m,
            0,
            failed.get(f"m{m}", TrialState.COMPLETE),
            value=None if f"m{m}" in failed else v,
            params=PARAMS[m],
            error="x" if failed.get(f"m{m}") == TrialState.FAIL else None,
        )
        for m, v in enumerate(values)
    ]


def test_members_are_ranked_by_their_value_and_failed_ones_last(pbt_cfg, segment):
    pop = Population(pbt_cfg, generation0(segment, [0.3, 0.1, 0.2, 0.05], m3=TrialState.PRUNED))
    assert ranking(pop, 0, maximize=False) == [1, 2, 0, 3]
    assert ranking(pop, 0, maximize=True) == [0, 2, 1, 3]


def test_the_bottom_member_copies_a_top_one_and_the_others_go_on(pbt_cfg, segment):
    pop = Population(pbt_cfg, generation0(segment, [0.3, 0.1, 0.2, 0.4]))
    resolved = resolve_space(pbt_cfg.space, pbt_cfg.seed)
    plans = {
        m: plan(pop, pbt_cfg.pbt, resolved, member=m, generation=1, study_seed=7, maximize=False) for m in range(4)
    }
    for m in (0, 1, 2):  # not in the bottom quarter: their own checkpoint and parameters
        assert plans[m].parent.number == m and plans[m].params == PARAMS[m] and not plans[m].exploited
    worst = plans[3]  # the bottom quarter (one of four) copies the top quarter (member 1)
    assert worst.exploited and worst.parent.number == 1
    assert {k: v for k, v in worst.params.items() if k not in ("lr", "weight_decay")} == {
        k: v for k, v in PARAMS[1].items() if k not in ("lr", "weight_decay")
    }
    assert set(worst.explored) <= {"lr", "weight_decay"} and worst.explored
    again = plan(pop, pbt_cfg.pbt, resolved, member=3, generation=1, study_seed=7, maximize=False)
    assert again == worst  # every worker plans the same


def test_a_failed_member_copies_another_even_outside_the_bottom_quarter(pbt_cfg, segment):
    pop = Population(pbt_cfg, generation0(segment, [0.3, 0.1, 0.2, 0.4], m0=TrialState.FAIL, m3=TrialState.PRUNED))
    resolved = resolve_space(pbt_cfg.space, pbt_cfg.seed)
    for m in (0, 3):
        p = plan(pop, pbt_cfg.pbt, resolved, member=m, generation=1, study_seed=1, maximize=False)
        assert p.exploited and p.parent.number == 1
    dead = Population(pbt_cfg, generation0(segment, [0, 0, 0, 0], **{f"m{m}": TrialState.PRUNED for m in range(4)}))
    with pytest.raises(NoParent, match="every member's segment of generation 0 failed or diverged"):
        plan(dead, pbt_cfg.pbt, resolved, member=0, generation=1, study_seed=1, maximize=False)


@pytest.mark.parametrize("seed", range(40))
def test_explore_changes_only_the_mutable_parameters_and_keeps_them_in_their_space(pbt_cfg, seed):
    resolved = resolve_space(pbt_cfg.space, pbt_cfg.seed)
    parent = {"latent_dim": 9, "nh1": 80, "optimizer": "RMSprop", "lr": 9e-3, "weight_decay": 1e-4}
    new, changes = explore(parent, pbt_cfg.pbt, resolved, np.random.default_rng(seed))
    assert {k: v for k, v in new.items() if k not in pbt_cfg.pbt.mutable} == {
        k: v for k, v in parent.items() if k not in pbt_cfg.pbt.mutable
    }
    assert changes == {k: [parent[k], new[k]] for k in pbt_cfg.pbt.mutable if new[k] != parent[k]}
    lr, wd = resolved["lr"], resolved["weight_decay"]
    assert lr.low <= new["lr"] <= lr.high and wd.low <= new["weight_decay"] <= wd.high


def test_explore_perturbs_by_the_factors_or_resamples(pbt_cfg):
    resolved = resolve_space(pbt_cfg.space, pbt_cfg.seed)
    never = dataclasses.replace(pbt_cfg.pbt, resample_probability=0.0)
    seen = set()
    for seed in range(30):
        new, _ = explore({"lr": 1e-3, "weight_decay": 1e-4}, never, resolved, np.random.default_rng(seed))
        seen.add(round(new["lr"] / 1e-3, 9))
        assert round(new["weight_decay"] / 1e-4, 9) in (0.8, 1.2)
    assert seen == {0.8, 1.2}
    always = dataclasses.replace(pbt_cfg.pbt, resample_probability=1.0)
    draws = {
        explore({"lr": 1e-3, "weight_decay": 1e-4}, always, resolved, np.random.default_rng(s))[0]["lr"]
        for s in range(30)
    }
    assert len(draws) == 30 and all(1e-4 <= d <= 1e-2 for d in draws)
    # kept in the range: 9e-3 x 1.2 is above it
    top = {
        explore({"lr": 9e-3, "weight_decay": 0.0}, never, resolved, np.random.default_rng(s))[0]["lr"]
        for s in range(30)
    }
    assert top == {9e-3 * 0.8, 1e-2}


def test_listed_and_integer_values_move_to_a_neighbour(pbt_cfg):
    resolved = {"lr": [3e-3, 1e-3, 2e-3], "weight_decay": ParamSpec("weight_decay", "int", low=1, high=40)}
    never = dataclasses.replace(pbt_cfg.pbt, resample_probability=0.0)
    seen = set()
    for seed in range(30):
        new, _ = explore({"lr": 2e-3, "weight_decay": 2}, never, resolved, np.random.default_rng(seed))
        assert new["weight_decay"] in (1, 3)  # 2 x 0.8 and 2 x 1.2 round back to 2: moved by one instead
        seen.add(new["lr"])
    assert seen == {1e-3, 3e-3}  # the sorted list's neighbours of 2e-3
