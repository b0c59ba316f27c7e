import pytest

from gankit.errors import RecipeError
from gankit.params import Param, check_params

SCHEMA = {
    "steps": Param(int, min=1),
    "rate": Param(float, 0.5, min=0.0, min_exclusive=True),
    "mode": Param(str, "fast", choices=("fast", "slow")),
    "flag": Param(bool, False),
    "shape": Param(list, [1, 2], item_type=int, length=2, min=1),
    "label": Param((int, str), None, nullable=True),
}


def test_defaults_are_filled_and_copied():
    a = check_params(SCHEMA, {"steps": 3}, "s")
    assert a == {"steps": 3, "rate": 0.5, "mode": "fast", "flag": False, "shape": [1, 2],
                 "label": None}
    a["shape"].append(9)
    assert check_params(SCHEMA, {"steps": 3}, "s")["shape"] == [1, 2]


def test_ints_are_accepted_for_floats_and_converted():
    assert check_params(SCHEMA, {"steps": 1, "rate": 2}, "s")["rate"] == 2.0
    assert isinstance(check_params(SCHEMA, {"steps": 1, "rate": 2}, "s")["rate"], float)


@pytest.mark.parametrize("given, message", [
    ({}, "s.steps: missing required key; expected an integer >= 1"),
    ({"steps": "64"}, "s.steps: expected an integer >= 1, got the string '64'"),
    ({"steps": True}, "s.steps: expected an integer >= 1, got the boolean true"),
    ({"steps": 1.5}, "s.steps: expected an integer >= 1, got float 1.5"),
    ({"steps": 0}, "s.steps: expected an integer >= 1, got 0"),
    ({"steps": 1, "rate": 0}, "s.rate: expected a number > 0.0, got 0.0"),
    ({"steps": 1, "rate": float("nan")}, "s.rate: expected a number > 0.0 (finite), got nan"),
    ({"steps": 1, "mode": "fats"}, "s.mode: expected one of 'fast', 'slow', got the string 'fats' (did you mean 'fast'?)"),
    ({"steps": 1, "shape": [1]}, "s.shape: expected a list of 2 integers >= 1, got 1 items"),
    ({"steps": 1, "shape": [1, 0]}, "s.shape[1]: expected an integer >= 1, got 0"),
    ({"steps": 1, "flag": "yes"}, "s.flag: expected true or false, got the string 'yes'"),
    ({"steps": 1, "label": 1.0}, "s.label: expected an integer or a string (or null), got float 1.0"),
    ({"steps": 1, "stesp": 1}, "s.stesp: unknown key (did you mean 'steps'?)"),
])
def test_errors_name_the_path_and_what_was_expected(given, message):
    with pytest.raises(RecipeError) as err:
        check_params(SCHEMA, given, "s")
    assert str(err.value).startswith(message), str(err.value)


def test_removed_names_point_to_the_modern_one():
    with pytest.raises(RecipeError, match=r"s\.lr: 'lr' is a legacy name .*use rate"):
        check_params(SCHEMA, {"steps": 1, "lr": 0.1}, "s", removed={"lr": "use rate"})
