"""The figures as drawn: what lands where (cells, points, colours, axes), not only a picture that is not blank."""

import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from mnist_hpo.core import figures


def png(path):
    """The image as float grey, RGB or RGBA; checks it is a real, non-blank picture."""
    img = imread(path)
    assert img.ndim in (2, 3) and img.shape[0] > 50 and img.shape[1] > 50
    assert (img if img.ndim == 2 else img[..., :3]).std() > 0.02, f"{path} is blank"
    return img


@pytest.fixture
def drawn(monkeypatch):
    """Every Figure a ``*_png`` function draws, caught as it is saved (and still saved)."""
    caught = []
    real_save = figures._save

    def save(fig, path, **kw):
        caught.append(fig)
        return real_save(fig, path, **kw)

    monkeypatch.setattr(figures, "_save", save)
    return caught


def pixel_at(fig, ax, x, y):
    """The RGB colour the rendered figure shows at data point (x, y) of ``ax``."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    return rgba[int(round(rgba.shape[0] - py)), int(round(px)), :3] / 255


@pytest.fixture
def scatter_data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    return rng.normal(size=(200, 3)) + labels[:, None], labels


@pytest.mark.parametrize("dims", [2, 3])
def test_scatter_png(tmp_path, scatter_data, drawn, dims):
    """Each digit's points sit where their coordinates say (column 0 on x, 1 on y, 2 on z), in that digit's colour."""
    points, labels = scatter_data
    points = points[:, :dims] * [1, 10, 100][:dims]  # x, y and z each on a scale of its own: a swap shows
    png(figures.scatter_png(points, labels, tmp_path / "s.png", title="t"))
    (fig,) = drawn
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("component 1", "component 2")
    by_label = {c.get_label(): c for c in ax.collections}
    assert sorted(by_label) == [str(d) for d in range(10)]
    for digit in range(10):
        c = by_label[str(digit)]
        # a 3-D scatter keeps its data coordinates apart from the 2-D projection it draws
        xyz = np.column_stack(c._offsets3d) if dims == 3 else c.get_offsets()
        np.testing.assert_allclose(xyz, points[labels == digit])
        assert np.allclose(c.get_facecolor()[:, :3], to_rgb(figures.DIGIT_COLOURS[digit]))
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(d) for d in range(10)]
    for digit, handle in enumerate(legend.legend_handles):
        assert np.allclose(handle.get_facecolor()[0][:3], to_rgb(figures.DIGIT_COLOURS[digit]))


def test_scatter_leaves_out_absent_digits(tmp_path, drawn):
    points, labels = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), np.array([7, 2, 7])
    figures.scatter_png(points, labels, tmp_path / "s.png")
    got = {c.get_label(): c.get_offsets().tolist() for c in drawn[0].axes[0].collections}
    assert got == {"2": [[2.0, 3.0]], "7": [[0.0, 1.0], [4.0, 5.0]]}


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
    for digit, t in enumerate(fig.data):  # the same points as the PNG's, where their data says, in the same colour
        xyz = np.column_stack([t.x, t.y, t.z] if dims == 3 else [t.x, t.y])
        np.testing.assert_array_equal(xyz, points[labels == digit, :dims])
        assert t.marker.color == figures.DIGIT_COLOURS[digit]


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


def test_confusion_png(tmp_path, drawn):
    """A known, asymmetric matrix: each count lands in its cell, the true digit's row and the predicted digit's
    column, in the colour of its count, with the count written there."""
    m = np.diag(np.arange(10) + 90)
    m[3, 8] = 60  # true 3 read as 8, often
    m[8, 3] = 0
    m[1, 7] = 7  # true 1 read as 7, seldom
    png(figures.confusion_png(m, tmp_path / "c.png", title="confusion"))
    (fig,) = drawn
    ax = fig.axes[0]
    (image,) = ax.images
    np.testing.assert_array_equal(image.get_array(), m)
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # row 0 (true digit 0) at the top
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert written == {(i, j): str(v) for (i, j), v in np.ndenumerate(m)}
    for true, pred in [(3, 8), (8, 3), (1, 7), (7, 1), (5, 5), (0, 9)]:
        # a corner of the cell, clear of the count written at its centre
        shown = pixel_at(fig, ax, pred - 0.35, true - 0.35)
        expected = image.cmap(image.norm(m[true, pred]))[:3]
        assert np.allclose(shown, expected, atol=0.02), (true, pred, shown, expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(d) for d in range(10)]


def test_pareto_figure_puts_a_wide_objective_on_a_log_axis_with_plain_labels(tmp_path, drawn):
    # the record's ae-pareto: the front sits at 17k-24k parameters, other trials reach 152k
    assert figures.wide_range(np.array([16759, 19763, 23921, 152297]))
    assert not figures.wide_range(np.array([0.0188, 0.0241, 0.0663]))  # 3.5x: stays linear
    assert not figures.wide_range(np.array([0.0, 5.0, 100.0]))  # a zero cannot go on a log axis
    points = np.array([[0.0188, 23921], [0.0192, 19763], [0.0286, 16759], [0.042, 152297]])
    figures.pareto_png(
        points,
        np.array([True, True, True, False]),
        tmp_path / "p.png",
        labels=("validation loss", "Parameters"),
        numbers=[41, 44, 40, 3],
    )
    ax = drawn[0].axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
    labels = {ax.yaxis.get_minor_formatter()(v, 0) for v in (20000, 30000, 40000, 50000)}
    assert labels == {"20,000", "30,000", "", "50,000"}
    assert [t.get_text() for t in ax.texts] == ["41", "44", "40"]  # the front's trials, in order of the first objective
