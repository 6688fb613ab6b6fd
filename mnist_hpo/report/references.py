"""The original report's own numbers, typed in and labelled as the report's, and the sections they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field




@dataclass(frozen=True)
class Reference:
    """What the report printed for one section: its table and its headline numbers."""

    table: str
    caption: str
    columns: list[str]
    rows: list[list]
    headline: dict[str, tuple[str, float]] = field(default_factory=dict)  # export metric -> (what, value)
    note: str = ""


AE_COLUMNS = ["Enc. Space Dim.", "L2", "Optimizer", "Epochs", "Learn. Rate", "Nh_1", "Valid. loss"]
REFERENCES: dict[str, Reference] = {
    "ae": Reference(
        "Table 1", "Autoencoder: the 5 best of 50 random-search combinations", AE_COLUMNS,
        [[9, 5.1e-05, "Adam", 50, 0.0009, 87, 0.0172], [8, 5.0e-05, "Adam", 50, 0.0019, 122, 0.0174],
         [9, 3.2e-07, "RMSprop", 50, 0.0019, 75, 0.0181], [8, 3.2e-07, "RMSprop", 50, 0.0019, 137, 0.0182],
         [9, 3.2e-07, "Adam", 50, 0.0003, 137, 0.0183]],
        {"test_mse": ("test MSE of the retrained best model", 0.016)}),
    "dae": Reference(
        "Table 2", "Denoising autoencoder: the 5 best combinations", AE_COLUMNS,
        [[9, 1.5e-06, "Adam", 50, 1.0e-03, 137, 0.015], [9, 4.2e-06, "Adam", 50, 1.9e-03, 64, 0.017],
         [8, 5.1e-06, "Adam", 50, 1.8e-03, 136, 0.017], [9, 1.5e-06, "RMSprop", 50, 1.6e-03, 137, 0.018],
         [9, 4.2e-06, "RMSprop", 50, 1.8e-03, 144, 0.020]],
        {"test_mse": ("test MSE of the retrained best model", 0.16)},
        note="The report's Figure 4 caption says MSE = 0.16, ten times its best validation loss 0.015; "
             "probably a typo for 0.016, shown here as printed."),
    "clf": Reference(
        "Table 3", "Classifier on the encoder: the 5 best of the grid (20 epochs)",
        ["Nh1", "Optimizer", "Epochs", "Lear. Rate", "Dropout p", "Weight_dec", "Valid_loss"],
        [[184, "RMSprop", 20, 0.001, 0.10, 1e-05, 0.147], [227, "Adam", 20, 0.001, 0.05, 1e-05, 0.148],
         [227, "Adam", 20, 0.001, 0.05, 0, 0.148], [227, "RMSprop", 20, 0.001, 0.10, 0, 0.149],
         [227, "Adam", 20, 0.001, 0.10, 0, 0.149]],
        {"test_accuracy": ("test accuracy of the retrained best model", 0.9485)}),
    "gan": Reference(
        "Table 4", "GAN hyperparameters (fixed in the report, 400 epochs)",
        ["", "Input dim.", "Hidden dim. 1", "Hidden dim. 2", "Output dim.", "LReLU slope", "Dropout p", "Optimizer", "Lr"],
        [["Discr.", 784, 512, 256, 1, 0.2, 0.3, "Adam", 5e-4], ["Gen.", 100, 256, 512, 784, 0.2, 0.3, "Adam", 2e-4]],
        {"d_loss": ("final discriminator loss", 0.81), "g_loss": ("final generator loss", 1.20)}),
}
TABLE5_REFERENCE = Reference(
    "Table 5", "First 5 encoded test samples (9-dimensional code)",
    [f"Enc. Variable {i}" for i in range(1, 10)] + ["label"],
    [[8.353384, 6.062208, 6.882480, -23.443331, -41.030186, 15.353236, -19.266520, 8.581726, 13.493169, 7],
     [0.835941, -20.711342, 5.206129, -45.665855, 16.590822, 27.288141, 11.172687, -24.107357, -23.720579, 2],
     [12.370504, -6.326145, 25.866806, -14.534688, 2.658181, 21.562832, 7.883648, 2.671305, 17.432297, 1],
     [0.243718, 16.727535, -5.982775, -50.432438, -26.678438, 12.678731, 33.965645, -3.363263, 6.581146, 0],
     [-24.115749, -3.651129, 17.732262, -16.592127, -28.590008, -0.602595, 20.050447, -10.631841, 10.671299, 4]],
    note="Codes are only defined up to the network's own coordinates: compare the labels and the scale, "
         "not the values, with another trained encoder.")
SECTIONS = [("ae", "1 Autoencoder"), ("dae", "3 Denoising autoencoder"),
            ("clf", "4 Autoencoder for classification"), ("gan", "5 GAN")]
# The study each section reads by default: the study files' names (make study-gan runs gan-search).
DEFAULT_STUDIES = {"ae": "ae", "dae": "dae", "clf": "clf", "gan": "gan-search"}
GAN_RUNS_DIR = "gan"  # storage/gan/<run>/ holds the runs of 'make gan' (mnist_hpo.workflows.gan_run)
GAN_RUN_FIGURES = {"losses.png": "Discriminator and generator losses per epoch (the report's Figure 6), with the "
                                 "Fréchet distance and class coverage at the evaluated epochs",
                   "first_vs_final.png": "The same noise through the generator after the first and the last epoch "
                                         "(the report's Figure 7)"}
FIGURE_CAPTIONS = {"loss.png": "Loss per epoch of the retrain on the full training set (the report's Figures 1a, 4, 5a)",
                   "reconstructions.png": "Test images and their reconstructions after the first and the last "
                                          "epoch (the report's Figures 1b, 4)"}
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".svg")


