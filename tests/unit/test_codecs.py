"""Every JSON codec a document passes through reads back exactly what was written: integers
beyond 64 bits, -0.0, non-ASCII and escaped keys, deep nesting. `encode` (SDK and node) writes,
`decode` reads untrusted input, `decode_stored` reads what a server wrote."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from db4core import documents
from db4core.errors import InvalidArgumentError

EDGES = {
    "big": 2 ** 64 + 1, "neg_big": -(2 ** 100), "max": documents.MAX_INTEGER,
    "neg_zero": -0.0, "tiny": 5e-324, "large": 1.7976931348623157e308,
    "ключ": "значение", "日本": ["語", {"ü": None}], "e\u0301": "\u00e9", "tab\tkey": "a\"b\\c",
    "emoji 🙂": "🙂", "nested": [[[[{"x": [1.5, -2, True, False, None]}]]]],
}


def same(a, b) -> bool:
    """Equal as JSON values, with -0.0 told from 0.0 and ints from floats."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def test_edge_values_round_trip_through_every_codec():
    raw = documents.encode(EDGES)
    for read in (documents.decode, documents.decode_stored):
        assert same(read(raw), EDGES), read.__name__
        assert same(read(raw.decode()), EDGES), read.__name__
    assert documents.encode(documents.decode_stored(raw)) == raw  # text is stable too


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 200), max_value=2 ** 200)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_random_documents_round_trip_through_every_codec(doc):
    try:
        raw = documents.encode(doc)
    except InvalidArgumentError:  # lone surrogates are refused, not mangled
        return
    assert same(documents.decode(raw), doc)
    assert same(documents.decode_stored(raw), doc)
    assert same(json.loads(raw), doc)
