from mnist_hpo.config import load_study_config
from mnist_hpo.core.space import draw_list, grid_space, resolve_space

from ..conftest import STUDIES


def test_report_space_is_reproducible_and_positive():
    cfg = load_study_config(STUDIES / "ae.toml")
    a = resolve_space(cfg.space, cfg.seed)
    b = resolve_space(cfg.space, cfg.seed)
    assert a == b
    assert a["latent_dim"] == list(range(2, 10))
    assert a["optimizer"] == ["Adam", "RMSprop"]
    assert len(a["lr"]) == 10 and all(v > 0 for v in a["lr"])
    assert a["weight_decay"][0] == 0 and len(a["weight_decay"]) == 11
    assert all(v > 0 for v in a["weight_decay"][1:])
    assert len(a["nh1"]) == 10 and all(50 <= v < 150 for v in a["nh1"])
    other = resolve_space(cfg.space, cfg.seed + 1)
    assert other["lr"] != a["lr"]


def test_normal_draws_redraw_non_positive():
    cfg = load_study_config(STUDIES / "ae.toml")
    spec = cfg.space["weight_decay"]  # Normal(1e-5, 1e-4): about half the raw draws are negative
    for seed in range(20):
        assert all(v > 0 for v in draw_list(spec, seed)[1:])


def test_grid_space_drops_duplicates():
    assert grid_space({"a": [1, 1, 2], "b": ["x"]}) == {"a": [1, 2], "b": ["x"]}
