"""Two-objective studies: validation MSE against model size, the Pareto front in show, export and report."""

import json

import pytest

from mnist_hpo.cli import main
from mnist_hpo.config import load_study_config
from mnist_hpo.core.space import resolve_space
from mnist_hpo.hpo.identity import study_identity
from mnist_hpo.hpo.objective import parameter_count
from mnist_hpo.hpo.queries import pareto_front
from mnist_hpo.hpo.run import run_study
from mnist_hpo.models import Autoencoder
from mnist_hpo.report.tables import top_table

from ..conftest import STUDIES, assert_one_error_line


@pytest.fixture
def pareto_cfg():
    cfg = load_study_config(STUDIES / "ae-pareto.toml")
    return cfg.with_overrides(name="pareto", trials=3, epochs=1, train_subset=600, test_subset=200, batch_size=128)


@pytest.fixture
def pareto_study(pareto_cfg, tiny, storage):
    return run_study(pareto_cfg, storage_url=storage, data=tiny, progress=False)


def test_trials_return_mse_and_model_size(pareto_study):
    assert [d.name for d in pareto_study.directions] == ["MINIMIZE", "MINIMIZE"]
    complete = [t for t in pareto_study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    for t in complete:
        size = parameter_count(Autoencoder(latent_dim=t.params["latent_dim"], nh1=t.params["nh1"]))
        assert t.values[1] == size and 0 < t.values[0] < 1
        assert len(t.user_attrs["val_loss"]) == 1 and t.user_attrs["val_loss"][0] == t.values[0]
    assert {t.number for t in pareto_front(pareto_study)} == {t.number for t in pareto_study.best_trials}


def test_show_lists_the_pareto_front(pareto_study, storage, capsys):
    assert main(["show", "pareto", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of study pareto" in out and "Parameters" in out
    for t in pareto_front(pareto_study):
        assert any(
            line.split()[0] == str(t.number) and f"{t.values[1]:.0f}" in line
            for line in out.splitlines()
            if line.strip() and line.split()[0].isdigit()
        )
    assert "pareto" in top_table(pareto_study)
    assert main(["list", "--storage", storage]) == 0 and "2 objectives" in capsys.readouterr().out


def test_export_needs_a_chosen_trial(pareto_study, storage, capsys, tmp_path):
    front = sorted(t.number for t in pareto_front(pareto_study))
    assert_one_error_line(
        capsys,
        ["export", "pareto", "--storage", storage],
        f"choose one of its Pareto front with --trial N (trials {', '.join(map(str, front))})",
    )
    assert main(["export", "pareto", "--trial", str(front[0]), "--storage", storage, "--quiet"]) == 0
    printed = capsys.readouterr().out
    meta = json.loads((tmp_path / "storage" / "exports" / "pareto" / f"trial-{front[0]}" / "export.json").read_text())
    chosen = pareto_study.trials[front[0]]
    assert meta["metrics"]["val_mse"] == chosen.values[0] and meta["metrics"]["params"] == chosen.values[1]
    assert "test_mse" in meta["metrics"]
    assert f"params = {chosen.values[1]:.0f}," in printed  # a count, not 19763.0000


def test_report_shows_the_pareto_front(pareto_study, storage, tmp_path):
    from mnist_hpo.report.build import build_report

    html, md = build_report(storage, out=tmp_path / "report.html")
    text = md.read_text()
    assert "Pareto front of study 'pareto'" in text and "pareto-pareto.png" in text
    assert (tmp_path / "storage" / "report-figures" / "pareto-pareto.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            ('[pruner]\ntype = "none"', '[pruner]\ntype = "median"'),
            'pruner.type must be "none" with several objectives',
        ),
        (('objectives = ["val_mse", "params"]', 'objectives = ["val_mse", "flops"]'), "study.objectives holds 'flops'"),
        (
            ('objectives = ["val_mse", "params"]', 'objectives = ["params", "val_mse"]'),
            "must start with the model's metric",
        ),
        (
            ('objectives = ["val_mse", "params"]', 'objectives = ["val_mse", "params"]\nbatch_trials = 2'),
            "study.batch_trials must be 1 with several objectives",
        ),
    ],
)
def test_bad_objectives_are_one_error_line(change, expected, capsys, storage, tmp_path):
    text = (STUDIES / "ae-pareto.toml").read_text()
    assert change[0] in text
    (tmp_path / "bad.toml").write_text(text.replace(change[0], change[1]))
    assert_one_error_line(capsys, ["study", str(tmp_path / "bad.toml"), "--storage", storage], expected)
    assert not (tmp_path / "studies.db").exists()


def test_single_objective_identity_is_unchanged(ae_cfg, pareto_cfg):
    assert "study.objectives" not in study_identity(ae_cfg, resolve_space(ae_cfg.space, ae_cfg.seed), "x")
    assert study_identity(pareto_cfg, resolve_space(pareto_cfg.space, 0), "x")["study.objectives"] == [
        "val_mse",
        "params",
    ]


@pytest.mark.mnist  # trains on the MNIST cache through the CLI
def test_study_command_prints_the_front_and_exports_nothing(capsys, storage, tmp_path):
    code = main(
        [
            "study",
            str(STUDIES / "ae-pareto.toml"),
            "--subset",
            "600",
            "--epochs",
            "1",
            "--trials",
            "2",
            "--study-name",
            "pareto-cli",
            "--storage",
            storage,
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Pareto front of study pareto-cli" in out
    assert "no single best trial to retrain" in out and not (tmp_path / "storage" / "exports").exists()
