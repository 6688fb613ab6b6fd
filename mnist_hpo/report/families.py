"""What the report knows about each model family, keyed by its ``model_type``.

The original report's section for a family (key, title, its table and headline numbers, the
study it reads by default), the report's names for the family's parameters as column headers,
and extra user-attribute columns of its tables. A family not listed here (a plugin's) has
no section, and its tables head each parameter with the parameter's own name. Two families
may name one parameter differently: each study's table uses its own family's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna


@dataclass(frozen=True)
class Reference:
    """What the original report printed for one model family's section: its table and its headline numbers."""

    table: str
    caption: str
    columns: list[str]
    rows: list[list[Any]]
    headline: dict[str, tuple[str, float]] = field(default_factory=dict)  # export metric -> (what, value)
    note: str = ""


@dataclass(frozen=True)
class Family:
    """The report's view of one model family."""

    headers: dict[str, str] = field(default_factory=dict)  # parameter -> the report's column header
    table_columns: dict[str, str] = field(default_factory=dict)  # trial user attribute -> header (top-5 table)
    section: str | None = None  # the report's section key (--study KEY=NAME); None: no section
    title: str = ""
    reference: Reference | None = None
    default_study: str = ""


# The report's columns for Tables 1 and 2 (the autoencoder and the denoising one).
AE_COLUMNS = ["Enc. Space Dim.", "L2", "Optimizer", "Epochs", "Learn. Rate", "Nh_1", "Valid. loss"]
AE_HEADERS = {
    "latent_dim": "Enc. Space Dim.",
    "weight_decay": "L2",
    "optimizer": "Optimizer",
    "lr": "Learn. Rate",
    "nh1": "Nh_1",
}

# In the order of the report's sections.
FAMILIES: dict[str, Family] = {
    "autoencoder": Family(
        AE_HEADERS,
        section="ae",
        title="1 Autoencoder",
        default_study="ae",
        reference=Reference(
            "Table 1",
            "Autoencoder: the 5 best of 50 random-search combinations",
            AE_COLUMNS,
            [
                [9, 5.1e-05, "Adam", 50, 0.0009, 87, 0.0172],
                [8, 5.0e-05, "Adam", 50, 0.0019, 122, 0.0174],
                [9, 3.2e-07, "RMSprop", 50, 0.0019, 75, 0.0181],
                [8, 3.2e-07, "RMSprop", 50, 0.0019, 137, 0.0182],
                [9, 3.2e-07, "Adam", 50, 0.0003, 137, 0.0183],
            ],
            {"test_mse": ("test MSE of the retrained best model", 0.016)},
        ),
    ),
    "denoising": Family(
        AE_HEADERS,
        section="dae",
        title="3 Denoising autoencoder",
        default_study="dae",
        reference=Reference(
            "Table 2",
            "Denoising autoencoder: the 5 best combinations",
            AE_COLUMNS,
            [
                [9, 1.5e-06, "Adam", 50, 1.0e-03, 137, 0.015],
                [9, 4.2e-06, "Adam", 50, 1.9e-03, 64, 0.017],
                [8, 5.1e-06, "Adam", 50, 1.8e-03, 136, 0.017],
                [9, 1.5e-06, "RMSprop", 50, 1.6e-03, 137, 0.018],
                [9, 4.2e-06, "RMSprop", 50, 1.8e-03, 144, 0.020],
            ],
            {"test_mse": ("test MSE of the retrained best model", 0.16)},
            note="The report's Figure 4 caption says MSE = 0.16, ten times its best validation loss 0.015; "
            "probably a typo for 0.016, shown here as printed.",
        ),
    ),
    "classifier": Family(
        {"nh1": "Nh_1", "dropout": "Dropout p", "optimizer": "Optimizer", "lr": "Learn. Rate", "weight_decay": "L2"},
        table_columns={"val_accuracy": "Valid. acc."},
        section="clf",
        title="4 Autoencoder for classification",
        default_study="clf",
        reference=Reference(
            "Table 3",
            "Classifier on the encoder: the 5 best of the grid (20 epochs)",
            ["Nh1", "Optimizer", "Epochs", "Lear. Rate", "Dropout p", "Weight_dec", "Valid_loss"],
            [
                [184, "RMSprop", 20, 0.001, 0.10, 1e-05, 0.147],
                [227, "Adam", 20, 0.001, 0.05, 1e-05, 0.148],
                [227, "Adam", 20, 0.001, 0.05, 0, 0.148],
                [227, "RMSprop", 20, 0.001, 0.10, 0, 0.149],
                [227, "Adam", 20, 0.001, 0.10, 0, 0.149],
            ],
            {"test_accuracy": ("test accuracy of the retrained best model", 0.9485)},
        ),
    ),
    # The section reads the search (make study-gan runs gan-search); make gan's run is added to it.
    "gan": Family(
        {"dropout": "Dropout p"},
        section="gan",
        title="5 GAN",
        default_study="gan-search",
        reference=Reference(
            "Table 4",
            "GAN hyperparameters (fixed in the report, 400 epochs)",
            [
                "",
                "Input dim.",
                "Hidden dim. 1",
                "Hidden dim. 2",
                "Output dim.",
                "LReLU slope",
                "Dropout p",
                "Optimizer",
                "Lr",
            ],
            [
                ["Discr.", 784, 512, 256, 1, 0.2, 0.3, "Adam", 5e-4],
                ["Gen.", 100, 256, 512, 784, 0.2, 0.3, "Adam", 2e-4],
            ],
            {"d_loss": ("final discriminator loss", 0.81), "g_loss": ("final generator loss", 1.20)},
        ),
    ),
}
NO_FAMILY = Family()


def family(model_type: str | None) -> Family:
    """The report's view of a family; a family it does not know gets none (parameter names as headers)."""
    return FAMILIES.get(model_type or "", NO_FAMILY)


def param_headers(model_type: str | None) -> dict[str, str]:
    """The column header of each parameter the family's report names (others keep their own name)."""
    return dict(family(model_type).headers)


def study_headers(study: optuna.Study) -> dict[str, str]:
    """:func:`param_headers` of the family a stored study trained (its ``model`` user attribute)."""
    return param_headers(study.user_attrs.get("model"))
