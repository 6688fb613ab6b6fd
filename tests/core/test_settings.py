"""The table of ``[study]`` settings (:mod:`mnist_hpo.core.settings`): every setting of StudyConfig has a row,
each row's flag is on the command line as the table says, and an override by flag name reaches the setting."""

import argparse
import dataclasses

from mnist_hpo.core.schema import SECTIONS, StudyConfig
from mnist_hpo.core.settings import STUDY_SETTINGS, flags_on

# StudyConfig's fields that are no [study] key: a table of their own, or where the config came from.
NOT_STUDY_KEYS = {"model", "model_options", *SECTIONS, "source"} - {"study"}


def _options(command: str) -> dict[str, argparse.Action]:
    from mnist_hpo.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {s: a for a in sub.choices[command]._actions for s in a.option_strings}


def test_every_study_setting_has_a_row_with_a_flag_or_none_on_purpose():
    keys = [s.key for s in STUDY_SETTINGS]
    assert len(keys) == len(set(keys))
    assert set(keys) == {f.name for f in dataclasses.fields(StudyConfig)} - NOT_STUDY_KEYS
    file_only = {s.key for s in STUDY_SETTINGS if s.flag is None}
    assert file_only == {
        "dataset",
        "idx_dir",
        "batch_size",
        "val_fraction",
        "test_subset",
        "retrain",
        "objectives",
        "enqueue",
    }


def test_each_row_with_a_flag_is_an_option_of_the_commands_it_names():
    for command in ("study", "worker", "gan", "reproduce"):
        options = _options(command)
        for setting, help in flags_on(command):
            action = options.get(setting.flag.name)
            assert action is not None and action.dest == setting.key and action.help == help, (command, setting)
    assert [s.key for s, _ in flags_on("gan")] == ["epochs", "train_subset", "device"]
    # The record's options name each of these (mnist_hpo.commands.runs.options_from): a new one goes there too.
    assert [s.key for s, _ in flags_on("reproduce")] == ["trials", "epochs", "train_subset", "device"]
    assert "--seed" not in _options("reproduce") and "--batch-trials" not in _options("gan")


def test_a_setting_flag_given_is_an_override_and_one_not_given_is_none():
    from mnist_hpo.cli import build_parser, typed

    args = typed(
        build_parser().parse_args(["study", "ae", "--subset", "200", "--study-name", "x", "--no-trial-figures"])
    )
    assert dict(args.overrides) == {"name": "x", "train_subset": 200, "trial_figures": False}
    assert typed(build_parser().parse_args(["gan"])).overrides == {}


def test_the_flag_names_are_with_overrides_keywords():
    from mnist_hpo.config import load_study_config

    cfg = load_study_config("ae").with_overrides(study_name="ae-short", subset=2000, batch_trials=2)
    assert (cfg.name, cfg.train_subset, cfg.batch_trials) == ("ae-short", 2000, 2)
