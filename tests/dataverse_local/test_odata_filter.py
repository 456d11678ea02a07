"""The `$filter` pre-processor and visitor, below HTTP (spec §2.2, §11.2)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from gtmsync.dataverse_local import odata_filter
from gtmsync.dataverse_local.errors import DataverseLocalError
from gtmsync.dataverse_local.schema import Catalogue


class TestPreprocess:
    @pytest.mark.parametrize(
        ("text", "aliases", "expected"),
        [
            ("lastname eq @p1", {"@p1": "'O''Bryan'"}, "lastname eq 'O''Bryan'"),
            (
                "f(PropertyValues=@p2)",
                {"@p2": '["OBrian","O\'Brian"]'},
                "f(PropertyValues=('OBrian','O''Brian'))",
            ),
            ('f(PropertyValues=["5","2000"])', {}, "f(PropertyValues=('5','2000'))"),
            ("f(PropertyValues=['2'])", {}, "f(PropertyValues=('2'))"),
            ("f(PropertyValues=[1, 2])", {}, "f(PropertyValues=(1,2))"),
            ("name eq '[not an array] @p1'", {"@p1": "'x'"}, "name eq '[not an array] @p1'"),
            ("revenue eq @missing", {}, "revenue eq null"),
        ],
    )
    def test_rewrites(self, text: str, aliases: dict[str, str], expected: str) -> None:
        assert odata_filter.preprocess(text, aliases) == expected

    def test_unterminated_literal_position_is_the_end(self) -> None:
        with pytest.raises(DataverseLocalError) as caught:
            odata_filter.preprocess("lastname eq 'O'Bryan'", {})
        assert caught.value.message == (
            "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
        )

    def test_a_parser_crash_on_bad_syntax_is_a_400(self) -> None:
        """odata-query's parser raises AttributeError on a function given a parameter twice."""
        text = (
            "Microsoft.Dynamics.CRM.In(PropertyName='name',"
            'PropertyValues=["a"] ,PropertyValues=[""])'
        )
        with pytest.raises(DataverseLocalError, match="Syntax error"):
            odata_filter.parse(text, {})


class TestVisitor:
    def sql(self, text: str, table: str = "account", **aliases: str) -> str:
        catalogue = Catalogue()
        metadata = sa.MetaData()
        tables = {
            name: sa.Table(
                f"dv_{name}",
                metadata,
                *(sa.Column(a, sa.String) for a in definition.attributes),
            )
            for name, definition in catalogue.tables.items()
        }
        clause = odata_filter.to_sql(
            text,
            catalogue=catalogue,
            table=catalogue.tables[table],
            sql_tables=tables,
            aliases=aliases,
            user_id=uuid.UUID(int=7),
        )
        return str(clause.compile(compile_kwargs={"literal_binds": True}))

    def test_strings_compare_lowered_on_both_sides(self) -> None:
        assert self.sql("name eq 'Contoso'") == "lower(dv_account.name) = 'contoso'"

    def test_lookup_value_maps_to_the_lookup_column(self) -> None:
        assert self.sql(f"_ownerid_value eq {uuid.UUID(int=7)}") == (
            "dv_account.ownerid = '00000000-0000-0000-0000-000000000007'"
        )

    def test_lookup_without_value_suffix_is_unknown(self) -> None:
        with pytest.raises(DataverseLocalError, match="Could not find a property named 'ownerid'"):
            self.sql("ownerid eq null")

    def test_equal_user_id_uses_the_caller(self) -> None:
        text = "Microsoft.Dynamics.CRM.EqualUserId(PropertyName='ownerid')"
        assert self.sql(text) == "dv_account.ownerid = '00000000-0000-0000-0000-000000000007'"

    def test_in_coerces_to_the_column_type(self) -> None:
        text = "Microsoft.Dynamics.CRM.In(PropertyName='industrycode',PropertyValues=['1','2'])"
        assert self.sql(text) == "dv_account.industrycode IN (1, 2)"

    def test_date_functions_compare_iso_text(self) -> None:
        on = self.sql(
            "Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2024-01-31')"
        )
        assert on == "dv_account.createdon >= '2024-01-31' AND dv_account.createdon < '2024-02-01'"
        not_on = self.sql(
            "Microsoft.Dynamics.CRM.NotOn(PropertyName='createdon',PropertyValue='2024-01-31')"
        )
        assert not_on == f"NOT ({on})"

    def test_unsupported_function_names_itself(self) -> None:
        with pytest.raises(DataverseLocalError, match=r"Microsoft\.Dynamics\.CRM\.InFiscalYear"):
            self.sql(
                "Microsoft.Dynamics.CRM.InFiscalYear(PropertyName='createdon',PropertyValue=2024)"
            )
