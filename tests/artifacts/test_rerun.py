"""What a rerun compares with (mnist_hpo.artifacts.rerun), without training."""

import optuna
import pytest
from optuna.distributions import FloatDistribution

from mnist_hpo.artifacts.rerun import _what_to_compare
from mnist_hpo.config import load_study_config
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.pbt import PBT

from ..conftest import STUDIES


def test_a_diverged_segment_has_no_value_to_compare_with():
    """A PBT segment that diverged is pruned after reporting epochs: one UserError line, not float(None)."""
    cfg = load_study_config(STUDIES / "ae-pbt.toml")
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.PRUNED,
        params={"lr": 0.001},
        distributions={"lr": FloatDistribution(1e-4, 1e-2)},
        intermediate_values={2: 0.05},
        user_attrs={"seed": 1, "fail_reason": "objective became nan", PBT: {"epochs": [2, 4], "member": 0}},
    )
    with pytest.raises(UserError, match="stopped without a value .objective became nan."):
        _what_to_compare(trial, cfg)
