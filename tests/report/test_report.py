import re

import optuna

from mnist_hpo.cli import main
from mnist_hpo.report.build import build_report
from mnist_hpo.report.export_blocks import export_figures
from mnist_hpo.report.formatting import fmt


def no_external_references(html: str) -> bool:
    return not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_report_with_no_study_run(storage, tmp_path, capsys):
    from mnist_hpo.storages import open_storage

    open_storage(storage)  # an empty storage (a missing one is an error: the report only reads)
    assert main(["report", "--storage", storage, "--out", str(tmp_path / "r" / "report.html")]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    md = (tmp_path / "r" / "report.md").read_text()
    for name, ref in (("ae", "Table 1"), ("dae", "Table 2"), ("clf", "Table 3"), ("gan-search", "Table 4")):
        for text in (html, md):
            assert f"Study {name!r} has not been run yet" in text.replace("&#x27;", "'")
            assert f"The report's {ref}" in text.replace("&#x27;", "'")
    assert "0.0172" in html and "94.85" not in html  # the reference table rows, not invented numbers
    assert no_external_references(html)
    assert "wrote" in capsys.readouterr().out


def test_report_from_a_tiny_study(ae_export, monkeypatch, tmp_path):
    storage_dir, url, folder = ae_export
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    html_path, md_path = build_report(url, out=tmp_path / "report.html")
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
    for name in ("dae", "clf", "gan-search"):
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
    images = export_figures(tmp_path)
    assert [i.path.name for i in images] == ["loss.png", "confusion_matrix.png"]
    assert images[1].caption == "confusion matrix"


def test_report_on_real_classifier_and_gan_exports_and_a_gan_run(model_exports, monkeypatch, tmp_path):
    import json

    storage_dir, url, folders = model_exports
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    html_path, md_path = build_report(url, out=tmp_path / "report.html")
    html, md = html_path.read_text(), md_path.read_text()
    clf = json.loads((folders["classifier"] / "export.json").read_text())
    gan = json.loads((folders["gan"] / "export.json").read_text())
    run = json.loads((storage_dir / "gan" / "short" / "result.json").read_text())
    clf_md = md.split("## 4 Autoencoder for classification")[1].split("## 5 GAN")[0]
    gan_md = md.split("## 5 GAN")[1].split("## Other studies")[0]
    # Section 4: the classifier export's test accuracy beside the report's, and its figures.
    assert f"| test accuracy of the retrained best model | {fmt(clf['metrics']['test_accuracy'])} | 0.9485 |" in clf_md
    assert "confusion_matrix.png" in clf_md and "loss.png" in clf_md
    # Section 5: the study-gan export's final D and G losses are read from its per-epoch history ...
    assert f"| final discriminator loss | {fmt(gan['history']['d_loss'][-1])} | 0.81 |" in gan_md
    assert f"| final generator loss | {fmt(gan['history']['g_loss'][-1])} | 1.2 |" in gan_md
    assert "not exported yet" not in gan_md
    # The study's table names its objective, and its protocol says the batch size was searched.
    assert "| Valid. Fréchet distance |" in gan_md and "| Valid. loss (CE) |" in clf_md
    assert "batch size searched" in gan_md and "batch size searched" not in clf_md
    # ... and the make gan run folder is read too: its final losses, scores, protocol and pictures.
    assert "### make gan run 'short': 3 epochs" in gan_md
    assert f"| final discriminator loss | {fmt(run['final']['d_loss'])} | 0.81 |" in gan_md
    assert f"- **Fréchet distance**: {fmt(run['final']['test_fid'])}" in gan_md
    assert "every 2 epochs, on 200 generated images" in gan_md
    for name in ("losses.png", "first_vs_final.png"):
        assert f"gan/short/{name})" in gan_md
    assert no_external_references(html)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert all((md_path.parent / link).exists() for link in links)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == len(links)


def test_a_retrain_on_the_plateau_is_said_beside_its_numbers(ae_export, monkeypatch, tmp_path):
    import json
    import shutil

    storage_dir, url, folder = ae_export
    copy = tmp_path / "storage"
    shutil.copytree(storage_dir, copy)
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(copy))
    meta_path = copy / folder.relative_to(storage_dir) / "export.json"
    meta = json.loads(meta_path.read_text())
    assert "on_plateau" in meta["retrain"]
    url = f"sqlite:///{copy / 'mnist_hpo.db'}"
    for stuck in (True, False):
        meta["retrain"].update(on_plateau=stuck, mean_image_test_mse=0.0671)
        meta_path.write_text(json.dumps(meta))
        _, md_path = build_report(url, out=tmp_path / f"report-{stuck}.html")
        md = md_path.read_text()
        assert ("The retrained model ended on the mean-image plateau" in md) is stuck
        assert ("answering the mean training image (0.0671)" in md) is stuck
