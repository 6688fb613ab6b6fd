"""A model family is its task class: defining one is all config.py and the report's tables need."""

import pytest

from mnist_hpo.config import parse_study
from mnist_hpo.errors import UserError
from mnist_hpo.tasks import TASKS, param_headers
from mnist_hpo.tasks.base import REGISTRY, Task
from mnist_hpo.tasks.rules import Rule


@pytest.fixture
def toy_family():
    class ToyTask(Task):
        model_type = "toy"
        metric = "val_toy"
        option_schema = {"width": ((int,), 3, None), "shape": ((str,), "round", ("round", "square"))}
        space_rules = {"lr": Rule("float", low=0, low_open=True)}
        stackable = True
        headers = {"lr": "Learn. Rate", "width": "Width"}

    try:
        yield ToyTask
    finally:
        REGISTRY.pop("toy", None)


def _doc(**model):
    return {"study": {"name": "toy-study", "batch_trials": 2}, "model": {"type": "toy", **model},
            "space": {"lr": {"choices": [0.1, 0.01]}}}


def test_a_new_task_class_is_a_model_type_with_its_options(toy_family):
    assert TASKS["toy"] is toy_family
    cfg = parse_study(_doc(shape="square"))
    assert cfg.model == "toy" and cfg.model_options == {"width": 3, "shape": "square"} and cfg.batch_trials == 2
    with pytest.raises(UserError, match="model.shape must be one of round, square"):
        parse_study(_doc(shape="oval"))
    with pytest.raises(UserError, match="model.depth is not a known key"):
        parse_study(_doc(depth=2))
    assert param_headers()["width"] == "Width"


def test_a_subclass_that_only_inherits_a_model_type_is_no_new_family():
    from mnist_hpo.tasks.autoencoder import AutoencoderTask

    class Tweaked(AutoencoderTask):
        pass

    assert TASKS["autoencoder"] is AutoencoderTask
