"""A model family is its task class: defining one is all config.py and the report's tables need."""

import pytest

from mnist_hpo.config import parse_study
from mnist_hpo.errors import UserError
from mnist_hpo.report.families import FAMILIES, Family, param_headers
from mnist_hpo.tasks.base import Task
from mnist_hpo.tasks.known import REGISTRY
from mnist_hpo.tasks.rules import Rule


@pytest.fixture
def toy_family():
    class ToyTask(Task):
        model_type = "toy"
        metric = "val_toy"
        option_schema = {"width": ((int,), 3, None), "shape": ((str,), "round", ("round", "square"))}
        space_rules = {"lr": Rule("float", low=0, low_open=True)}
        stackable = True

    try:
        yield ToyTask
    finally:
        REGISTRY.pop("toy", None)


def _doc(**model):
    return {
        "study": {"name": "toy-study", "batch_trials": 2},
        "model": {"type": "toy", **model},
        "space": {"lr": {"choices": [0.1, 0.01]}},
    }


def test_a_new_task_class_is_a_model_type_with_its_options(toy_family):
    assert REGISTRY["toy"] is toy_family
    cfg = parse_study(_doc(shape="square"))
    assert cfg.model == "toy" and cfg.model_options == {"width": 3, "shape": "square"} and cfg.batch_trials == 2
    with pytest.raises(UserError, match="model.shape must be one of round, square"):
        parse_study(_doc(shape="oval"))
    with pytest.raises(UserError, match="model.depth is not a known key"):
        parse_study(_doc(depth=2))
    # No report metadata for it: its tables head each parameter with the parameter's own name.
    assert param_headers("toy") == {}


def test_a_task_implements_the_protocol_or_cannot_be_built(toy_family):
    """Task is an abstract base class: a family that lacks build/fit/test fails at once, not mid-study."""
    with pytest.raises(TypeError, match="abstract"):
        toy_family(None, None)


def test_two_families_may_name_one_parameter_differently(monkeypatch):
    """Each study's table uses its own family's headers: no family's name wins, nothing raises."""
    import optuna

    from mnist_hpo.analysis.importance import importance_lines
    from mnist_hpo.report.tables import top_rows

    monkeypatch.setitem(FAMILIES, "toy-a", Family({"lr": "Learning rate (a)"}))
    monkeypatch.setitem(FAMILIES, "toy-b", Family({"lr": "Step size (b)"}))
    headers = []
    for model in ("toy-a", "toy-b"):
        study = optuna.create_study()
        study.set_user_attr("model", model)
        for i in range(6):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"lr": 0.1 * (i + 1), "n": i % 2},
                    value=float(i),
                    distributions={
                        "lr": optuna.distributions.FloatDistribution(0.01, 1.0),
                        "n": optuna.distributions.IntDistribution(0, 1),
                    },
                )
            )
        columns, _ = top_rows(study)
        headers.append(columns[1])
        assert any(
            f"lr ({FAMILIES[model].headers['lr']})" in line for line in importance_lines(study, param_headers(model))
        )
        assert columns[2] == "n"  # a parameter without a header keeps its own name
    assert headers == ["Learning rate (a)", "Step size (b)"]


def test_a_subclass_that_only_inherits_a_model_type_is_no_new_family():
    from mnist_hpo.tasks.autoencoder import AutoencoderTask

    class Tweaked(AutoencoderTask):
        pass

    assert REGISTRY["autoencoder"] is AutoencoderTask
