"""The bottom stage: what every other stage may use and that knows none of them.

The study file's schema (:mod:`.schema`: the dataclasses and the checks of their values), its
``[study]`` settings with their command-line flags (:mod:`.settings`), the reading of a file's tables
(:mod:`.parse`),
where a study file is found (:mod:`.study_files`: shipped with the package, or a path), the values a
search-space entry stands for (:mod:`.space`), the rule for names that become paths (:mod:`.names`),
seed derivation (:mod:`.seeds`),
the hardware probe (:mod:`.hardware`) and the drawing helpers (:mod:`.figures`). Nothing here
imports another stage of mnist_hpo but :mod:`mnist_hpo.errors` (``pyproject.toml``'s
import-linter contract checks it).
"""
