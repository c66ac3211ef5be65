import click
import pytest

from eyesdk.cliutil import comma_choices, comma_ints, split_commas


def test_split_commas_strips_dedups_and_keeps_order():
    assert split_commas(("b, a", "a,,c ")) == ["b", "a", "c"]
    assert split_commas("x") == ["x"]
    assert split_commas(None) == []


def test_comma_choices_accepts_known_and_all_word():
    parse = comma_choices(("fp32", "int8"), "precision", all_word="all")
    assert parse(None, None, ("int8,fp32",)) == ("int8", "fp32")
    assert parse(None, None, "all") is None
    assert parse(None, None, ()) is None


def test_comma_choices_names_the_unknown_and_the_choices():
    parse = comma_choices(("fp32", "int8"), "precision")
    with pytest.raises(click.BadParameter, match=r"unknown precision fp64; choose from fp32, int8"):
        parse(None, None, ("fp32,fp64",))


def test_comma_ints_parses_and_checks_minimum():
    parse = comma_ints(minimum=1, what="thread counts")
    assert parse(None, None, "1,2,2") == (1, 2)
    with pytest.raises(click.BadParameter, match="not a comma list of thread counts"):
        parse(None, None, "1,x")
    with pytest.raises(click.BadParameter, match="must be integers >= 1"):
        parse(None, None, "0,1")
    with pytest.raises(click.BadParameter, match="expected at least one"):
        parse(None, None, " , ")
