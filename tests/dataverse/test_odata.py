"""OData builders: literal escaping (property-tested against odata-query's lexer), In() chunking."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odata_query import ast as odata_ast
from odata_query.grammar import ODataLexer, ODataParser

from gtmsync.dataverse import odata


def parse(expression: str) -> odata_ast._Node:
    return ODataParser().parse(ODataLexer().tokenize(expression))


class TestLiterals:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("O'Bryan", "'O''Bryan'"),
            ("", "''"),
            (None, "null"),
            (True, "true"),
            (False, "false"),
            (42, "42"),
            (Decimal("5000000.00"), "5000000.00"),
            (1.5, "1.5"),
            (
                uuid.UUID("5f3c1a3e-0000-0000-0000-000000000001"),
                "5f3c1a3e-0000-0000-0000-000000000001",
            ),
            (datetime(2024, 1, 31, tzinfo=UTC), "2024-01-31T00:00:00Z"),
            (
                datetime(2024, 1, 31, 2, 0, tzinfo=timezone(timedelta(hours=2))),
                "2024-01-31T00:00:00Z",
            ),
            (date(2024, 1, 31), "2024-01-31"),
        ],
    )
    def test_literal(self, value: odata.Scalar, expected: str) -> None:
        assert odata.literal(value) == expected

    def test_naive_datetime_is_refused_with_the_fix(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            odata.literal(datetime(2024, 1, 31))  # noqa: DTZ001

    def test_nan_is_refused(self) -> None:
        with pytest.raises(ValueError, match="OData number"):
            odata.literal(float("nan"))

    @pytest.mark.parametrize("bad", ["name eq 1", "a;b", "", "1abc", "a/", "x'"])
    def test_names_are_validated(self, bad: str) -> None:
        with pytest.raises(ValueError, match="logical name"):
            odata.eq(bad, 1)

    def test_guid_compares_bare_and_parses_as_guid(self) -> None:
        value = uuid.UUID("5f3c1a3e-0000-0000-0000-000000000001")
        tree = parse(odata.eq("_ownerid_value", value))
        assert tree == odata_ast.Compare(
            odata_ast.Eq(), odata_ast.Identifier("_ownerid_value"), odata_ast.GUID(str(value))
        )


class TestStringRoundTrip:
    @settings(max_examples=300)
    @given(st.text())
    def test_any_string_survives_a_filter_unchanged(self, value: str) -> None:
        tree = parse(odata.eq("lastname", value))
        assert tree == odata_ast.Compare(
            odata_ast.Eq(), odata_ast.Identifier("lastname"), odata_ast.String(value)
        )

    @settings(max_examples=200)
    @given(st.text())
    def test_string_functions_keep_the_value(self, value: str) -> None:
        tree = parse(odata.contains("name", value))
        assert isinstance(tree, odata_ast.Call)
        assert tree.args[1] == odata_ast.String(value)

    @settings(max_examples=200)
    @given(st.text(), st.text())
    def test_combined_filters_keep_both_values(self, a: str, b: str) -> None:
        tree = parse(odata.and_(odata.eq("firstname", a), odata.not_(odata.eq("lastname", b))))
        assert isinstance(tree, odata_ast.BoolOp)
        assert tree.left.right == odata_ast.String(a)
        assert tree.right.operand.right == odata_ast.String(b)

    @settings(max_examples=200)
    @given(st.text())
    def test_query_string_encoding_round_trips(self, value: str) -> None:
        expression = odata.eq("name", value)
        encoded = odata.encode_query({"$filter": expression, "$select": "name"})
        assert "+" not in encoded.replace("%2B", "")
        assert parse_qs(encoded, keep_blank_values=True)["$filter"] == [expression]

    @settings(max_examples=200)
    @given(st.lists(st.text(), min_size=1, max_size=8))
    def test_in_values_round_trip_as_json(self, values: list[str]) -> None:
        expression = odata.in_("lastname", values)
        match = re.fullmatch(
            r"Microsoft\.Dynamics\.CRM\.In\(PropertyName='lastname',PropertyValues=(.*)\)",
            expression,
            flags=re.DOTALL,
        )
        assert match is not None
        assert json.loads(match.group(1)) == values


class TestIn:
    def test_microsoft_example_shape(self) -> None:
        assert odata.in_("lastname", ["OBrian", "O'Bryan"]) == (
            "Microsoft.Dynamics.CRM.In(PropertyName='lastname',"
            'PropertyValues=["OBrian","O\'Bryan"])'
        )

    def test_empty_values_are_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one value"):
            odata.in_("name", [])

    def test_chunks_keep_every_url_under_the_limit_and_every_value_once(self) -> None:
        values = [f"value-{i}-with'quote&amp" for i in range(2000)]
        prefix = "https://org.crm.dynamics.com/api/data/v9.2/contacts"
        others = {"$select": "fullname,emailaddress1"}
        chunks = list(
            odata.in_chunks(
                "emailaddress1", values, url_prefix=prefix, other_params=others, max_url_length=4000
            )
        )
        assert len(chunks) > 1
        seen: list[str] = []
        for chunk in chunks:
            url = f"{prefix}?{odata.encode_query({**others, '$filter': chunk})}"
            assert len(url) <= 4000
            seen += json.loads(unquote(chunk).split("PropertyValues=", 1)[1][:-1])
        assert seen == values

    def test_a_value_longer_than_the_limit_is_reported(self) -> None:
        with pytest.raises(ValueError, match="max_url_length"):
            list(odata.in_chunks("name", ["x" * 500], max_url_length=200))


class TestQueryOptions:
    def test_select_orderby_expand_query(self) -> None:
        params = odata.query(
            select=["name", "revenue"],
            filter=odata.compare("revenue", "gt", 100),
            orderby=odata.orderby("name", ("revenue", True)),
            expand=[odata.expand("primarycontactid", select=["fullname"], top=1)],
            top=5,
            count=True,
        )
        assert params == {
            "$select": "name,revenue",
            "$filter": "revenue gt 100",
            "$orderby": "name asc,revenue desc",
            "$expand": "primarycontactid($select=fullname;$top=1)",
            "$top": "5",
            "$count": "true",
        }

    def test_key_segments(self) -> None:
        guid = uuid.UUID("5f3c1a3e-0000-0000-0000-000000000001")
        assert odata.key_segment(guid) == f"({guid})"
        assert odata.key_segment(str(guid)) == f"({guid})"
        assert odata.key_segment({"accountnumber": "O'B"}) == "(accountnumber='O''B')"
        assert odata.key_segment({"firstname": "Joe", "n": 2}) == "(firstname='Joe',n=2)"

    def test_non_guid_string_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a GUID"):
            odata.key_segment("ABC123")

    def test_bad_operator(self) -> None:
        with pytest.raises(ValueError, match="operator"):
            odata.compare("name", "like", "x")
