"""The record's parts (``mnist-hpo reproduce``): what each part of the record asks of its study."""


def test_the_records_comparison_studies_attach_no_trial_figures():
    from mnist_hpo.workflows.record import study_parts

    with_figures = {p.name for p in study_parts() if p.figures}
    assert with_figures == {"ae", "ae-table1", "dae", "clf", "gan-search"}
