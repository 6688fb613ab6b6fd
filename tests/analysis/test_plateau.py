"""Trials stuck on the mean image, counted per L2 value (``mnist-hpo show`` and the report)."""

from __future__ import annotations

import optuna

from mnist_hpo.analysis.plateau import plateau_lines, plateau_rows
from mnist_hpo.cli import main
from mnist_hpo.hpo.run import run_study
from mnist_hpo.measures import mean_image
from mnist_hpo.measures.mean_image import STUCK_SHARE, mean_image_mse


def _study_with_values(ae_cfg, tiny, storage, values: dict[float, list[float]]) -> optuna.Study:
    study = run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    (t,) = study.get_trials()
    for wd, vals in values.items():
        for v in vals:
            study.add_trial(
                optuna.trial.create_trial(
                    params={**t.params, "weight_decay": wd}, distributions=t.distributions, value=v
                )
            )
    return study


def test_rows_count_the_stuck_trials_per_l2_value(ae_cfg, tiny, storage):
    baseline = mean_image_mse(ae_cfg)
    stuck, learned = STUCK_SHARE * baseline * 1.02, STUCK_SHARE * baseline * 0.5
    study = _study_with_values(ae_cfg, tiny, storage, {})
    real = study.get_trials()[0]
    space = real.distributions["weight_decay"].choices
    others = sorted(v for v in space if v > 0 and v != real.params["weight_decay"])
    low, high = others[0], others[-1]
    study = _study_with_values(
        ae_cfg.with_overrides(name="ae-plateau"), tiny, storage, {low: [learned, learned, stuck], high: [stuck, stuck]}
    )
    rows = {r[0]: r for r in plateau_rows(study, baseline)}
    assert rows[low][1:4] == [3, 1, 1 / 3] and abs(rows[low][4] - learned) < 1e-12
    assert rows[high][1:4] == [2, 2, 1.0]
    assert sorted(rows) == sorted({low, high, study.get_trials()[0].params["weight_decay"]})
    assert sum(r[1] for r in rows.values()) == 6  # the trial run for real counts too
    just_below = STUCK_SHARE * baseline * 0.999
    study.add_trial(
        optuna.trial.create_trial(
            params={**real.params, "weight_decay": low}, distributions=real.distributions, value=just_below
        )
    )
    assert {r[0]: r for r in plateau_rows(study, baseline)}[low][1:3] == [4, 1]  # the threshold is a strict line


def test_show_says_a_short_study_is_not_judged(ae_cfg, tiny, storage, capsys):
    run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    assert main(["show", ae_cfg.name, "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "ended on the mean-image plateau" not in out
    # 1 epoch of 480 images at batch 128
    assert "mean-image plateau: not counted; each trial's 4 optimizer steps are too few" in out
    assert f"at least {mean_image.MIN_STEPS:,} are needed" in out


def test_show_prints_the_plateau_table(ae_cfg, tiny, storage, capsys, monkeypatch):
    monkeypatch.setattr(mean_image, "MIN_STEPS", 1)  # judge this 4-step study as if it were long enough
    study = run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    assert main(["show", ae_cfg.name, "--storage", storage]) == 0
    out = capsys.readouterr().out
    baseline = mean_image_mse(ae_cfg)
    stuck = sum(1 for t in study.trials if t.value >= STUCK_SHARE * baseline)
    lines = plateau_lines(study)
    assert lines[0].startswith(f"{stuck} of 2 complete trials ended on the mean-image plateau")
    assert f"{baseline:.4f}" in lines[0] and "\n".join(lines) in out


def test_no_plateau_table_for_a_classifier_study():
    from mnist_hpo.analysis.plateau import applies

    study = optuna.create_study()
    study.set_user_attr("model", "classifier")
    study.add_trial(
        optuna.trial.create_trial(
            params={"weight_decay": 0.0},
            distributions={"weight_decay": optuna.distributions.FloatDistribution(0, 1)},
            value=0.1,
        )
    )
    assert not applies(study) and plateau_lines(study) == []


def test_report_has_the_plateau_table(ae_cfg, tiny, storage, tmp_path, monkeypatch):
    from mnist_hpo.report.build import build_report

    monkeypatch.setattr(mean_image, "MIN_STEPS", 1)  # judge this 4-step study as if it were long enough

    study = run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    _, md_path = build_report(storage, out=tmp_path / "r" / "report.html")
    md = md_path.read_text()
    assert f"Trials stuck on the mean image, by L2 value (study '{ae_cfg.name}')" in md
    for row in plateau_rows(study, mean_image_mse(ae_cfg)):
        assert f"| {row[1]} | {row[2]} | {row[3]:.0%} |" in md
