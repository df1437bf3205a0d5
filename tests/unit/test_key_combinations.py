"""Key combinations in a conference room: the Voxology seed's ``exit_on_key: "#0"``."""

from __future__ import annotations

import pytest

from mediaserver.actions.key_combinations import (
    KeyCombinations,
    combination_problem,
    commands,
)

# seeds/003, CONFERENCE, "Example Response".
SEED = commands(exit_on_key="#0", mute_on_key="1", unmute_on_key="3")


def pressed(combinations: KeyCombinations, keys: str, start: float = 0.0, step: float = 0.2):
    return [combinations.press(key, start + i * step) for i, key in enumerate(keys)]


def test_the_seed_s_keys_are_a_sequence_pressed_in_order() -> None:
    assert SEED == {"#0": "exit", "1": "mute", "3": "unmute"}
    keys = KeyCombinations(SEED)
    assert pressed(keys, "13#0") == ["mute", "unmute", None, "exit"]
    # Either key alone, or the two the other way round, is no exit.
    assert pressed(KeyCombinations(SEED), "#") == [None]
    assert pressed(KeyCombinations(SEED), "0#50") == [None, None, None, None]


def test_keys_too_far_apart_start_over() -> None:
    keys = KeyCombinations(SEED, gap=3.0)
    assert keys.press("#", 10.0) is None
    assert keys.press("0", 13.5) is None  # the # was forgotten
    assert keys.press("#", 20.0) is None
    assert keys.press("0", 22.9) == "exit"


def test_a_combination_acts_once_then_the_keys_start_over() -> None:
    keys = KeyCombinations(commands("##", None, None))
    assert pressed(keys, "####") == [None, "exit", None, "exit"]


def test_the_longer_of_two_combinations_ending_alike_wins() -> None:
    keys = KeyCombinations(commands(exit_on_key="#0", mute_on_key="0", unmute_on_key=None))
    assert pressed(keys, "0#0") == ["toggle", None, "exit"]


@pytest.mark.parametrize(
    ("mute", "unmute", "expected"),
    [
        ("5", None, {"5": "toggle"}),
        ("5", "5", {"5": "toggle"}),
        ("5", "6", {"5": "mute", "6": "unmute"}),
        (None, "6", {"6": "unmute"}),
        (None, None, {}),
    ],
)
def test_mute_toggles_unless_unmute_has_keys_of_its_own(
    mute: str | None, unmute: str | None, expected: dict[str, str]
) -> None:
    assert commands(None, mute, unmute) == expected


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (("#0", "1", "3"), None),
        (("#0", "0", None), None),  # a suffix: the longer wins
        (("5", "5", "5"), ("mute_on_key", "mute_on_key and exit_on_key are the same keys ('5')")),
        (("*", "1", "*"),
         ("unmute_on_key", "unmute_on_key and exit_on_key are the same keys ('*')")),
        (
            ("#0", "#", None),
            (
                "mute_on_key",
                "mute_on_key ('#') would act in the middle of exit_on_key ('#0'), which could "
                "then never be pressed; choose keys that do not begin or sit inside another "
                "combination",
            ),
        ),
        (("1", "213", None), ("exit_on_key", "exit_on_key ('1') would act in the middle of "
                              "mute_on_key ('213'), which could then never be pressed; choose "
                              "keys that do not begin or sit inside another combination")),
    ],
)  # fmt: skip
def test_combinations_that_cannot_all_be_pressed_are_refused(
    keys: tuple[str | None, str | None, str | None], problem: tuple[str, str] | None
) -> None:
    assert combination_problem(*keys) == problem
