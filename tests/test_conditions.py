"""The where-condition language: parsing, errors with positions, vectorised evaluation."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.conditions import Condition, ConditionError

NOW = datetime(2026, 11, 23)


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": [50_000.0, np.nan, 20_000.0],
            "country": ["GB", "DE", "FR"],
            "signup_at": pd.to_datetime(["2026-11-01", "2025-01-01", None]),
            "children": [0, 1, 2],
            "monetary": [100.0, 0.0, 50.0],
            "frequency": [2, 0, 1],
            "segment": ["VIP", "Lapsed", "VIP"],
        }
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('income > 40000 and country in ["GB", "DE"]', [True, False, False]),
        ("days_since(signup_at) < 90 or not (children == 0)", [True, True, True]),
        ("income != 50000", [False, False, True]),  # missing income: false, whatever the operator
        ("monetary / frequency >= 25", [True, False, True]),  # 0/0 is missing, not an error
        ('country not in ["GB"]', [False, True, True]),
        ("income is null", [False, True, False]),
        ("income is not null and income % 3 == 2", [True, False, True]),
        ('lower(country) == "fr" or upper(segment) == "LAPSED"', [False, True, True]),
        ("coalesce(income, 0) < 30000", [False, True, True]),
        ("-income < -30000", [True, False, False]),
        ("abs(children - 1) == 1 and true", [True, False, True]),
        ('segment == "VIP" and monetary + 10 * children >= 70', [True, False, True]),
        ("false or children >= 2", [False, False, True]),
    ],
)
def test_evaluate(table: pd.DataFrame, expression: str, expected: list[bool]) -> None:
    assert Condition.parse(expression).evaluate(table, NOW).tolist() == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("income = 3", "column 8: unexpected character '='; use '==' to compare"),
        ("income >", "column 9: expected a value but found the end"),
        (
            "foo(3)",
            "column 1: unknown function 'foo'; functions: abs, coalesce, days_since, lower, upper",
        ),
        (
            "day_since(signup_at) > 3",
            "column 1: unknown function 'day_since'; did you mean "
            "'days_since'?; functions: abs, coalesce, days_since, lower, upper",
        ),
        (
            "income > 3 country",
            "column 12: unexpected 'country'; join conditions with 'and' or 'or'",
        ),
        ("", "column 1: empty condition"),
        (
            "x in [a]",
            "column 7: expected a number, string, true or false in the list but found 'a'",
        ),
        ("(income > 3", "column 12: expected ')' but found the end"),
        ("coalesce(income)", "column 1: coalesce() takes 2 arguments, got 1"),
        ("income is 3", "column 11: expected 'null' but found '3'"),
        ("income > 3 @", "column 12: unexpected character '@'"),
    ],
)
def test_syntax_errors_have_positions(expression: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        Condition.parse(expression)
    assert str(caught.value) == message


def test_unknown_names_are_found_before_evaluation(table: pd.DataFrame) -> None:
    condition = Condition.parse("monetary > 3 and incme > 3")
    assert condition.names == [("monetary", 1), ("incme", 18)]
    with pytest.raises(ConditionError) as caught:
        condition.evaluate(table, NOW)
    assert str(caught.value) == "column 18: unknown name 'incme'; did you mean 'income'?"


def test_a_value_the_condition_cannot_use_fails_that_row_only(table: pd.DataFrame) -> None:
    mixed = table.assign(code=["A", 3, None])
    evaluated = Condition.parse('lower(code) == "a" or children == 1').evaluate_rows(mixed, NOW)
    assert evaluated.matches.tolist() == [True, False, False]
    assert evaluated.errors.tolist() == [False, True, False]
    assert evaluated.problems == ("column 1: lower() needs text, got a number (1 customer)",)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("country + 1 > 3", "column 9: '+' needs numbers, got text and a number (3 customers)"),
        (
            "frequency >= 'abc'",
            "column 11: cannot compare a number with text using '>=' (3 customers)",
        ),
        ("lower(frequency) == 'a'", "column 1: lower() needs text, got a number (3 customers)"),
        ("abs(country) > 1", "column 1: abs() needs a number, got text (3 customers)"),
        (
            "country * 999999999 == 'b'",
            "column 9: '*' needs numbers, got text and a number (3 customers)",
        ),
        ("days_since(country) > 1", "column 1: days_since() needs a date (3 customers)"),
    ],
)
def test_type_errors_are_per_row_errors_never_tracebacks(
    table: pd.DataFrame, expression: str, problem: str
) -> None:
    evaluated = Condition.parse(expression).evaluate_rows(table, NOW)
    assert evaluated.matches.tolist() == [False, False, False]
    assert evaluated.errors.tolist() == [True, True, True]
    assert evaluated.problems == (problem,)


COLUMN_TYPES = {
    "income": "number",
    "frequency": "number",
    "country": "text",
    "email": "text",
    "signup_at": "date",
}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "frequency >= 'abc'",
            "column 11: cannot compare a number with text using '>=' "
            "('frequency' is a number, 'abc' is text)",
        ),
        ("lower(frequency) == 'x'", "column 1: lower() needs text, but 'frequency' is a number"),
        ("abs(email) > 3", "column 1: abs() needs a number, but 'email' is text"),
        ("days_since(income) > 3", "column 1: days_since() needs a date, but 'income' is a number"),
        ("-country < 3", "column 1: '-' needs a number, but 'country' is text"),
        ("income * country > 3", "column 8: '*' needs numbers, but 'country' is text"),
    ],
)
def test_check_types_against_column_types(expression: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        Condition.parse(expression).check_types(COLUMN_TYPES)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "expression",
    [
        "frequency >= 2 and monetary >= 50",
        "signup_at > '2025-01-01' and lower(country) == 'gb'",
        "days_since(signup_at) < 90 or email + '' == ''",
        "unknown_trait > 3 and lower(other) == 'x'",
    ],
)
def test_well_typed_conditions_pass(expression: str) -> None:
    Condition.parse(expression).check_types(COLUMN_TYPES)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            " or ".join(["income == 1"] * 1000),
            "column 751: condition has more than 200 parts; split it into segments or use a list "
            "('x in [...]') instead of many 'or' terms",
        ),
        (
            "(" * 200 + "income" + ")" * 200,
            "column 33: condition is nested deeper than 32 levels "
            "(parentheses, 'not', '-', function calls)",
        ),
        (
            "not " * 100 + "income",
            "column 129: condition is nested deeper than 32 levels "
            "(parentheses, 'not', '-', function calls)",
        ),
        ("'a' * 999999999 == 'b'", "column 1: '*' needs numbers, but 'a' is text"),
        (
            "income > " + "1" * 200_000,
            "column 100001: condition of 200,009 characters is longer "
            "than 100,000; use a segment or a trait computed in the data instead",
        ),
    ],
)
def test_huge_conditions_are_refused_with_a_clear_error(expression: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConditionError) as caught:
        Condition.parse(expression)
    assert str(caught.value) == message
    assert time.monotonic() - started < 1


def test_a_long_list_is_one_part() -> None:
    values = ", ".join(f'"C{i}"' for i in range(2000))
    Condition.parse(f"customer_id in [{values}] and income > 3")


def test_strings_with_quotes_and_keywords_are_values() -> None:
    frame = pd.DataFrame({"name": ["O'Brien", "and", 'say "hi"']})
    condition = Condition.parse("name in [\"O'Brien\", 'and', 'say \\\"hi\\\"']")
    assert condition.evaluate(frame, NOW).tolist() == [True, True, True]


@given(
    values=st.lists(st.integers(-1000, 1000) | st.none(), min_size=1, max_size=30),
    threshold=st.integers(-1000, 1000),
)
def test_comparison_matches_pandas(values: list[int | None], threshold: int) -> None:
    frame = pd.DataFrame({"x": pd.Series(values, dtype="float64")})
    got = Condition.parse(f"x >= {threshold} and not x == 7").evaluate(frame, NOW)
    expected = (frame["x"] >= threshold) & (frame["x"] != 7) & frame["x"].notna()
    assert got.tolist() == expected.tolist()
