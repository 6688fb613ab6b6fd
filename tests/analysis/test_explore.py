import json

from matplotlib.image import imread

from mnist_hpo.analysis.explore import EXPLORE_DIR, EXPLORE_JSON, read_explore
from mnist_hpo.cli import main


def test_explore_outputs(ae_export, tiny):
    _, _, folder = ae_export
    ex = read_explore(folder)
    meta = json.loads((folder / "export.json").read_text())
    d = meta["model"]["arch"]["latent_dim"]
    assert ex["latent_dim"] == d and ex["weights_sha256"] == meta["weights"]["sha256"]
    # Table 5: the first 5 test images, one column per code variable, then the label.
    t5 = ex["table5"]
    assert t5["columns"] == [f"Enc. Variable {i}" for i in range(1, d + 1)] + ["label"]
    assert [r[-1] for r in t5["rows"]] == tiny.test_labels[:5].tolist()
    assert all(len(r) == d + 1 for r in t5["rows"])
    # The settings used are recorded, t-SNE's number of points included.
    assert ex["settings"]["points"] == 200 and ex["settings"]["tsne_points"] == 120
    assert ex["settings"]["noise_mean"] == 5.0 and ex["settings"]["noise_std"] == 10.0
    expected = {"pca2": [200, 2], "tsne2": [120, 2], "tsne3": [120, 3]}
    if d >= 3:
        expected["pca3"] = [200, 3]
    for key, shape in expected.items():
        assert ex["figures"][key]["shape"] == shape
        for kind in ("png", "html"):
            assert (folder / EXPLORE_DIR / ex["figures"][key][kind]).stat().st_size > 1000
    assert ex["figures"]["noise"]["shape"] == [16, 28, 28]
    assert ex["figures"]["interpolation"]["shape"] == [10, 28, 28]
    for name in ("noise.png", "interpolation.png"):
        img = imread(folder / EXPLORE_DIR / name)
        assert (img if img.ndim == 2 else img[..., :3]).std() > 0.02
    for space in ("latent", "pca2", "tsne2"):
        m = ex["metrics"][space]
        assert 0 <= m["knn_accuracy"] <= 1 and -1 <= m["silhouette"] <= 1
    # Even one epoch on 600 images clusters digits better than chance (0.1).
    assert ex["metrics"]["latent"]["knn_accuracy"] > 0.2
    assert (folder / EXPLORE_DIR / "plotly.min.js").exists()


def test_explore_cli_errors(ae_export, monkeypatch, capsys):
    storage_dir, _, folder = ae_export
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    assert main(["explore", "--tsne-iter", "100"]) == 2
    assert "at least 250" in capsys.readouterr().err
    assert main(["explore", "--study", "never-run"]) == 2
    assert "no export of study 'never-run'" in capsys.readouterr().err
    assert main(["explore", "--export", str(folder.parent)]) == 2
    assert "is not an export" in capsys.readouterr().err
    assert main(["explore", "--interpolate", "3", "12"]) == 2


def test_read_explore_absent(tmp_path):
    assert read_explore(tmp_path) is None
    (tmp_path / EXPLORE_DIR).mkdir()
    (tmp_path / EXPLORE_DIR / EXPLORE_JSON).write_text("{broken")
    assert read_explore(tmp_path) is None
