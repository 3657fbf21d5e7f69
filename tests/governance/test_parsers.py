"""`FlowgateJSONParser`: JSON the database or the process cannot hold is a ParseError (400)."""

from __future__ import annotations

import io

import pytest
from rest_framework.exceptions import ParseError

from governance.api.parsers import MAX_DEPTH, FlowgateJSONParser, json_problem


def parse(raw: str | bytes):
    data = raw.encode() if isinstance(raw, str) else raw
    return FlowgateJSONParser().parse(io.BytesIO(data), "application/json", {})


def nested(depth: int) -> str:
    """`depth` levels of containers, alternating arrays and objects."""
    opened = "".join("[" if level % 2 else '{"k": ' for level in range(depth))
    closed = "".join("]" if level % 2 else "}" for level in reversed(range(depth)))
    return opened + "1" + closed


def test_ordinary_json_passes_through():
    assert parse('{"a": [1, 2.5, -0.0, 1e308, "é", null, true], "b": {"c": "😀"}}') == {
        "a": [1, 2.5, -0.0, 1e308, "é", None, True],
        "b": {"c": "😀"},
    }


def test_depth_limit_is_exact():
    assert parse(nested(MAX_DEPTH)) is not None
    with pytest.raises(ParseError, match=f"nested deeper than {MAX_DEPTH}"):
        parse(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("raw", ["[" * 100_000, "[" * 100_000 + "]" * 100_000])
def test_recursion_is_a_parse_error(raw):
    with pytest.raises(ParseError, match="nested deeper"):
        parse(raw)


@pytest.mark.parametrize(
    "raw,message",
    [
        ("1e400", "out of range"),
        ("[-1e400]", "out of range"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        (r'"\u0000"', "NUL"),
        (r'{"\u0000": 1}', "object key contains a NUL"),
        (r'["\ud83d"]', "unpaired UTF-16 surrogate"),
        (r'{"\udc00x": 1}', "object key contains an unpaired"),
        (b'"\xff"', "JSON parse error"),
        ('{"a": ', "JSON parse error"),
    ],
)
def test_refused_with_a_message(raw, message):
    with pytest.raises(ParseError, match=message):
        parse(raw)


def test_a_surrogate_pair_is_one_character_and_fine():
    assert parse(r'"\ud83d\ude00"') == "😀"


def test_json_problem_does_not_recurse():
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert "nested deeper" in json_problem(value)
