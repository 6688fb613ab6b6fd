"""The one rule for names that become paths (mnist_hpo.core.names) and the safe stand-ins for any other name."""

import pytest

from mnist_hpo.core.names import MAX_NAME, check_name, file_stem, is_safe_name, name_problem, safe_folder, slug
from mnist_hpo.errors import UserError

BAD = {
    "/abs": "starts with '/'",
    "..": "starts with '.'",
    "../x": "starts with '.'",
    "a/b": "holds '/'",
    "a\nb": "holds '\\n'",
    "x" * (MAX_NAME + 1): f"is {MAX_NAME + 1} characters long",
    "": "is empty",
    ".hidden": "starts with '.'",
    "-rf": "starts with '-'",
    "café": "holds 'é'",
}
GOOD = ["ae", "ae-tpe-2021", "mlpae.v2", "_scratch", "0", "x" * MAX_NAME]


@pytest.mark.parametrize("name", list(BAD), ids=repr)
def test_an_unsafe_name_is_one_line_saying_why_and_the_rule(name):
    assert not is_safe_name(name) and BAD[name] in name_problem(name)
    with pytest.raises(UserError) as e:
        check_name(name, "--study-name")
    assert "\n" not in str(e.value) and "letters, digits, '.', '_' and '-'" in str(e.value)
    assert len(str(e.value)) < 250  # an over-long name is cut short in the message


@pytest.mark.parametrize("name", GOOD)
def test_safe_names_pass(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", [*BAD, "ae"], ids=repr)
def test_the_stand_ins_for_any_name_are_safe_and_tell_names_apart(name):
    uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert is_safe_name(slug(name)) and is_safe_name(file_stem(name)) and is_safe_name(safe_folder(name, uuid))
    assert safe_folder(name, uuid).endswith("-0f1e2d3c")
    assert file_stem("ae") == "ae" and file_stem("a/b") != file_stem("a_b")  # a digest keeps them apart
