"""The ``search`` commands' own handling of their arguments: what a study or its workers are given."""


def test_no_trial_figures_on_the_command_line_and_for_workers(monkeypatch):
    from mnist_hpo.cli import build_parser, typed
    from mnist_hpo.commands import search

    args = typed(build_parser().parse_args(["worker", "ae", "--no-trial-figures"]))
    cfg = search._load_cfg(args)
    assert cfg.trial_figures is False
    assert search._load_cfg(typed(build_parser().parse_args(["worker", "ae"]))).trial_figures
    seen = []
    monkeypatch.setattr(search, "spawn_workers", lambda cfg, n, **kw: seen.append(cfg))  # as search calls it
    search.run_workers(args, cfg, 2)
    assert seen[0].trial_figures is False  # each worker gets the study as resolved here, switch included
