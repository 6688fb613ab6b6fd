"""The original report's own numbers and the sections they belong to.

Each model family's table and headline numbers are its entry in :mod:`.families`;
what is here belongs to no one family: Table 5, the GAN run's figures, the captions.
"""

from __future__ import annotations

from .families import FAMILIES, Reference

TABLE5_REFERENCE = Reference(
    "Table 5",
    "First 5 encoded test samples (9-dimensional code)",
    [f"Enc. Variable {i}" for i in range(1, 10)] + ["label"],
    [
        [8.353384, 6.062208, 6.882480, -23.443331, -41.030186, 15.353236, -19.266520, 8.581726, 13.493169, 7],
        [0.835941, -20.711342, 5.206129, -45.665855, 16.590822, 27.288141, 11.172687, -24.107357, -23.720579, 2],
        [12.370504, -6.326145, 25.866806, -14.534688, 2.658181, 21.562832, 7.883648, 2.671305, 17.432297, 1],
        [0.243718, 16.727535, -5.982775, -50.432438, -26.678438, 12.678731, 33.965645, -3.363263, 6.581146, 0],
        [-24.115749, -3.651129, 17.732262, -16.592127, -28.590008, -0.602595, 20.050447, -10.631841, 10.671299, 4],
    ],
    note="Codes are only defined up to the network's own coordinates: compare the labels and the scale, "
    "not the values, with another trained encoder.",
)
# Each model family's section of the report, in the order of .families:
# its key (--study KEY=NAME), title, the report's own numbers and the study it reads by default.
_FAMILIES = [(f.section, f) for f in FAMILIES.values() if f.section]
REFERENCES: dict[str, Reference] = {key: f.reference for key, f in _FAMILIES if f.reference}  # every section has one
SECTIONS = [(key, f.title) for key, f in _FAMILIES]
DEFAULT_STUDIES = {key: f.default_study for key, f in _FAMILIES}
GAN_RUNS_DIR = "gan"  # storage/gan/<run>/ holds the runs of 'make gan' (mnist_hpo.workflows.gan_run)
GAN_RUN_FIGURES = {
    "losses.png": "Discriminator and generator losses per epoch (the report's Figure 6), with the "
    "Fréchet distance and class coverage at the evaluated epochs",
    "first_vs_final.png": "The same noise through the generator after the first and the last epoch "
    "(the report's Figure 7)",
}
FIGURE_CAPTIONS = {
    "loss.png": "Loss per epoch of the retrain on the full training set (the report's Figures 1a, 4, 5a)",
    "reconstructions.png": "Test images and their reconstructions after the first and the last "
    "epoch (the report's Figures 1b, 4)",
}
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".svg")
