"""The shape of a study file and its settings (:mod:`mnist_hpo.core.schema`): reading the TOML, and a
configuration's overrides and dictionary form."""

import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.core.schema import StudyConfig
from mnist_hpo.core.study_files import read_study_document
from mnist_hpo.errors import UserError

from ..conftest import STUDIES


def test_malformed_toml(tmp_path):
    (tmp_path / "s.toml").write_text("[study\nname='x'")
    with pytest.raises(UserError, match="is not valid TOML"):
        read_study_document(tmp_path / "s.toml")


def test_missing_file():
    with pytest.raises(UserError, match="not found"):
        read_study_document("studies/nope.toml")


def test_overrides_are_validated():
    cfg = load_study_config(STUDIES / "ae.toml")
    assert cfg.with_overrides(trials=2, epochs=None).trials == 2
    with pytest.raises(UserError, match="train_subset must be at least 10"):
        cfg.with_overrides(train_subset=3)


def test_config_round_trips_through_dict():
    cfg = load_study_config(STUDIES / "ae.toml")
    assert StudyConfig.from_dict(cfg.as_dict()) == cfg
