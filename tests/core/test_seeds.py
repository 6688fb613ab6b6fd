"""The seeds every draw is made from (:mod:`mnist_hpo.core.seeds`): stored studies depend on their exact values."""

import zlib

from mnist_hpo.core.seeds import derive_seed, seed_sequence


def test_derived_seeds_keep_the_values_stored_studies_were_drawn_with():
    assert derive_seed(2020, 0) == 15435262  # trial 0's seed in the record's journals (results/journals/ae-gp.log)
    assert derive_seed(2020, "lr") == 1336202025
    assert derive_seed(0, 2020) == 1165557280  # the order of the parts counts


def test_a_string_part_enters_as_its_crc32():
    assert derive_seed(2020, "lr") == derive_seed(2020, zlib.crc32(b"lr"))
    assert seed_sequence(7, "weight_decay").entropy == seed_sequence(7, zlib.crc32(b"weight_decay")).entropy


def test_derived_seeds_are_32_bit_and_differ_by_part():
    seeds = {derive_seed(2020, n) for n in range(200)} | {derive_seed(2021, n) for n in range(200)}
    assert len(seeds) == 400 and all(0 <= s < 2**32 for s in seeds)
