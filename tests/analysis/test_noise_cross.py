"""The cross table of noises and denoisers (mnist_hpo.analysis.noise_cross) on the suite's tiny exports."""

import json

import pytest

from mnist_hpo.analysis.noise_cross import (
    CLEAN,
    NOISES,
    RECORD_SEED,
    cross_figure,
    cross_table,
    load_denoisers,
    noisy_inputs,
    table_rows,
)


def test_a_denoiser_on_its_own_noise_gives_its_exported_test_mse(model_exports, tiny, tmp_path):
    folders = model_exports[2]
    meta = json.loads((folders["denoising"] / "export.json").read_text())
    assert meta["config"]["seed"] == RECORD_SEED  # the export's test noise is the table's
    models = load_denoisers({"dae (Gaussian)": folders["denoising"], "ae (none)": folders["autoencoder"]})
    table = cross_table(models, tiny.test_images)
    assert table["dae (Gaussian)"]["Gaussian"] == pytest.approx(meta["metrics"]["test_mse"], rel=1e-6)
    assert table["dae (Gaussian)"][CLEAN] == pytest.approx(meta["metrics"]["test_mse_clean"], rel=1e-6)
    assert set(table["ae (none)"]) == {*NOISES, CLEAN}
    columns, rows = table_rows(table)
    assert columns[0] == "model (trained on)" and len(columns) == len(NOISES) + 2
    assert [sum(" *" in row[c] for row in rows) for c in range(1, len(columns))] == [1] * (len(NOISES) + 1)
    path = cross_figure(models, tiny.test_images, tmp_path / "cross.png", count=3)
    assert path.stat().st_size > 1000


def test_the_noisy_copies_are_fixed_and_differ_by_noise(tiny):
    a, b = noisy_inputs(tiny.test_images[:50]), noisy_inputs(tiny.test_images[:50])
    for name in (*NOISES, CLEAN):
        assert (a[name] == b[name]).all()
    salt = a["salt and pepper"]
    assert ((salt == 0) | (salt == 1) | (salt == a[CLEAN])).all()  # pixels kept or set to 0/1, nothing else
    assert not (a["Gaussian"] == a[CLEAN]).all()
