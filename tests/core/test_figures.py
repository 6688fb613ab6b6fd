import re

import numpy as np
import pytest
from matplotlib.image import imread

from mnist_hpo.core import figures


def png(path):
    """The image as float grey, RGB or RGBA; checks it is a real, non-blank picture."""
    img = imread(path)
    assert img.ndim in (2, 3) and img.shape[0] > 50 and img.shape[1] > 50
    assert (img if img.ndim == 2 else img[..., :3]).std() > 0.02, f"{path} is blank"
    return img


@pytest.fixture
def scatter_data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    return rng.normal(size=(200, 3)) + labels[:, None], labels


@pytest.mark.parametrize("dims", [2, 3])
def test_scatter_png(tmp_path, scatter_data, dims):
    points, labels = scatter_data
    png(figures.scatter_png(points[:, :dims], labels, tmp_path / "s.png", title="t"))


def test_scatter_rejects_other_dimensions(tmp_path, scatter_data):
    with pytest.raises(ValueError, match="2 or 3"):
        figures.scatter_png(np.zeros((5, 4)), np.zeros(5), tmp_path / "s.png")


@pytest.mark.parametrize("dims,trace", [(2, "scattergl"), (3, "scatter3d")])
def test_scatter_figure_has_one_trace_per_digit(scatter_data, dims, trace):
    points, labels = scatter_data
    fig = figures.scatter_figure(points[:, :dims], labels, title="PCA")
    assert [t.name for t in fig.data] == [str(d) for d in range(10)]
    assert {t.type for t in fig.data} == {trace}
    assert sum(len(t.x) for t in fig.data) == len(points)


def test_scatter_html_needs_no_internet(tmp_path, scatter_data):
    points, labels = scatter_data
    text = figures.scatter_html(points[:, :2], labels, tmp_path / "s.html").read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", text)
    assert len(text) > 1_000_000  # plotly.js itself is inlined
    figures.scatter_html(points[:, :2], labels, tmp_path / "d" / "s.html", include_plotlyjs="directory")
    assert (tmp_path / "d" / "plotly.min.js").exists()


def test_image_grid_and_rows(tmp_path):
    images = np.random.default_rng(0).random((16, 28, 28))
    grid = png(figures.image_grid_png(images, tmp_path / "g.png", ncols=4, title="noise"))
    rows = png(figures.image_rows_png([("a", images[:8]), ("b", images[8:])], tmp_path / "r.png"))
    assert rows.ndim == 2  # grey images, black text: stored as an 8-bit grey PNG, half the RGBA file
    assert grid.shape[0] > grid.shape[1] * 0.8  # 4 x 4: about square
    assert rows.shape[1] > 3 * rows.shape[0]  # 2 rows of 8: wide


def test_history_png(tmp_path):
    history = {"train_loss": [0.3, 0.2, 0.1], "test_loss": [0.35, 0.25, 0.2], "seconds": [1, 1, 1]}
    assert figures.curve_keys(history) == ["train_loss", "test_loss"]
    one = png(figures.history_png(history, tmp_path / "h.png"))
    two = png(figures.history_png({**history, "val_accuracy": [0.5, 0.7, 0.8]}, tmp_path / "h2.png"))
    assert two.shape[1] > 1.5 * one.shape[1]  # a second panel for the accuracy
    with pytest.raises(ValueError):
        figures.history_png({"seconds": [1.0]}, tmp_path / "x.png")


def test_confusion_png(tmp_path):
    png(figures.confusion_png(np.diag(np.arange(10) + 90), tmp_path / "c.png", title="confusion"))


def test_pareto_figure_puts_a_wide_objective_on_a_log_axis_with_plain_labels(tmp_path, monkeypatch):
    # the record's ae-pareto: the front sits at 17k-24k parameters, other trials reach 152k
    assert figures.wide_range(np.array([16759, 19763, 23921, 152297]))
    assert not figures.wide_range(np.array([0.0188, 0.0241, 0.0663]))  # 3.5x: stays linear
    assert not figures.wide_range(np.array([0.0, 5.0, 100.0]))  # a zero cannot go on a log axis
    axes = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: (axes.append(fig.axes[0]), real_save(fig, path))[1])
    points = np.array([[0.0188, 23921], [0.0192, 19763], [0.0286, 16759], [0.042, 152297]])
    figures.pareto_png(points, np.array([True, True, True, False]), tmp_path / "p.png",
                       labels=("validation loss", "Parameters"), numbers=[41, 44, 40, 3])
    ax = axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
    labels = {ax.yaxis.get_minor_formatter()(v, 0) for v in (20000, 30000, 40000, 50000)}
    assert labels == {"20,000", "30,000", "", "50,000"}
    assert [t.get_text() for t in ax.texts] == ["41", "44", "40"]  # the front's trials, in order of the first objective
