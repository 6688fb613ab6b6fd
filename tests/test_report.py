import re

import optuna

from mnist_hpo import report as R
from mnist_hpo.cli import main


def no_external_references(html: str) -> bool:
    return not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_report_with_no_study_run(storage, tmp_path, capsys):
    assert main(["report", "--storage", storage, "--out", str(tmp_path / "r" / "report.html")]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    md = (tmp_path / "r" / "report.md").read_text()
    for name, ref in (("ae", "Table 1"), ("dae", "Table 2"), ("clf", "Table 3"), ("gan", "Table 4")):
        for text in (html, md):
            assert f"Study {name!r} has not been run yet" in text.replace("&#x27;", "'")
            assert f"The report's {ref}" in text.replace("&#x27;", "'")
    assert "0.0172" in html and "94.85" not in html  # the reference table rows, not invented numbers
    assert no_external_references(html)
    assert "wrote" in capsys.readouterr().out


def test_report_from_a_tiny_study(ae_export, monkeypatch, tmp_path):
    storage_dir, url, folder = ae_export
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    html_path, md_path = R.build_report(url, out=tmp_path / "report.html")
    html, md = html_path.read_text(), md_path.read_text()
    study = optuna.load_study(study_name="ae", storage=url)
    best = study.best_trial
    # Table 1 recomputed beside the report's, with the protocol behind it.
    assert "This project: the 2 best complete trials of study 'ae'" in md
    assert f"| {best.number} | {best.params['latent_dim']} |" in md
    assert "The report's Table 1" in md and "| 9 | 5.1e-05 | Adam | 50 | 0.0009 | 87 | 0.0172 |" in md
    assert "- **trials**: 2 complete" in md and "- **epochs per trial**: 1" in md
    assert "- **study seed**: 2020" in md and "training images 600" in md
    assert "- **hardware**: " in md and "not recorded" not in md.split("Protocol of study 'ae'")[1].split("\n\n")[1]
    assert "wall time" in md
    # Headline: test MSE of the export beside the report's 0.016.
    assert "| test MSE of the retrained best model | " in md and "| 0.016 |" in md
    # Table 5 from the exploration: 5 rows with the test labels.
    assert "Table 5 recomputed" in md
    # Missing studies say so; the ae section does not.
    for name in ("dae", "clf", "gan"):
        assert f"Study {name!r} has not been run yet" in md
    assert "Study 'ae' has not been run yet" not in md
    # Every figure: export (2) + explore (PCA/t-SNE up to 4, noise, interpolation) embedded as data URIs.
    n_images = len(re.findall(r'<img [^>]*src="data:image/png;base64,', html))
    assert n_images >= 2 + 3 + 2
    assert no_external_references(html)
    # The Markdown twin links the same images, relative to itself, and they exist.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == n_images
    assert all((md_path.parent / link).exists() for link in links)


def test_report_section_override(ae_export, monkeypatch, tmp_path, capsys):
    storage_dir, url, _ = ae_export
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    out = tmp_path / "x.html"
    assert main(["report", "--storage", url, "--out", str(out), "--study", "ae=other"]) == 0
    md = out.with_suffix(".md").read_text()
    assert "Study 'other' has not been run yet" in md
    assert "Other studies in the database" in md and "### ae" in md  # 'ae' still shown, under other studies
    assert main(["report", "--storage", url, "--study", "vae=x"]) == 2
    assert "unknown report section" in capsys.readouterr().err
    assert main(["report", "--storage", url, "--study", "ae"]) == 2


def test_figures_of_other_models_are_picked_up(tmp_path):
    (tmp_path / "confusion_matrix.png").write_bytes(b"x")
    (tmp_path / "loss.png").write_bytes(b"x")
    (tmp_path / "export.json").write_text("{}")
    images = R.export_figures(tmp_path)
    assert [i.path.name for i in images] == ["loss.png", "confusion_matrix.png"]
    assert images[1].caption == "confusion matrix"


def test_headline_finds_other_metric_names():
    table = R.headline_table({"metrics": {"test_acc": 0.97}}, R.REFERENCES["clf"])
    assert table.rows == [["test accuracy of the retrained best model", "0.97", "0.9485"]]
    table = R.headline_table({"metrics": {}, "history": {"d_loss": [1.0, 0.8]}}, R.REFERENCES["gan"])
    assert table.rows[0][1] == "0.8" and table.rows[1][1] == "not exported yet"
