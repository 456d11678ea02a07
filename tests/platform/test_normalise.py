from __future__ import annotations

from datetime import date

import pytest

from gtmsync.platform import normalise


class TestEmail:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Ann.Lee@Example.COM", "ann.lee@example.com"),
            ("  bo+crm@sub.example.co.uk ", "bo+crm@sub.example.co.uk"),
            ("o'neil@example.ie", "o'neil@example.ie"),
        ],
    )
    def test_lower_cases_and_trims(self, raw: str, expected: str) -> None:
        assert normalise.normalise_email(raw) == expected

    @pytest.mark.parametrize(
        "raw", ["ann", "ann@", "@example.com", "ann@example", "a b@example.com", "a..b@example.com"]
    )
    def test_refuses_malformed(self, raw: str) -> None:
        with pytest.raises(ValueError, match="not an email address"):
            normalise.normalise_email(raw)


class TestRegistrableDomain:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("example.com", "example.com"),
            ("https://www.Example.com/about?x=1#top", "example.com"),
            ("http://user:pw@shop.example.com:8080/", "example.com"),
            ("www.example.co.uk", "example.co.uk"),
            ("https://blog.example.com.au", "example.com.au"),
            ("EXAMPLE.DE.", "example.de"),
            ("https://bücher.de/", "bücher.de"),
        ],
    )
    def test_reduces_to_registrable_domain(self, raw: str, expected: str) -> None:
        assert normalise.registrable_domain(raw) == expected

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("not a website", "not a web address"),
            ("localhost", "not a web address"),
            ("http://192.168.0.1/", "IP address"),
            ("co.uk", "public suffix"),
            ("https://-bad-.com", "not a web address"),
        ],
    )
    def test_refuses_what_is_not_a_company_domain(self, raw: str, reason: str) -> None:
        with pytest.raises(ValueError, match=reason):
            normalise.registrable_domain(raw)


class TestNumbers:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("1200", 1200), ("1,200", 1200), ("1200.0", 1200), (" 12,345,678 ", 12345678), ("0", 0)],
    )
    def test_whole_numbers_in_spreadsheet_forms(self, raw: str, expected: int) -> None:
        assert normalise.parse_whole_number(raw) == expected

    @pytest.mark.parametrize("raw", ["12.5", "-3", "$100", "1.2M", "12,00", "ten", "1e3"])
    def test_refuses_anything_else(self, raw: str) -> None:
        with pytest.raises(ValueError, match="not a whole number"):
            normalise.parse_whole_number(raw)

    def test_score_range(self) -> None:
        assert normalise.parse_score("0") == 0
        assert normalise.parse_score("100") == 100
        with pytest.raises(ValueError, match="between 0 and 100"):
            normalise.parse_score("101")


class TestDatesAndGrades:
    def test_iso_dates_and_timestamps(self) -> None:
        assert normalise.parse_iso_date("2026-11-02") == date(2026, 11, 2)
        assert normalise.parse_iso_date("2026-11-02T10:00:00Z") == date(2026, 11, 2)

    @pytest.mark.parametrize("raw", ["2026-13-01", "02/11/2026", "20261102", "yesterday"])
    def test_refuses_non_iso(self, raw: str) -> None:
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            normalise.parse_iso_date(raw)

    def test_audience_strength_grades(self) -> None:
        assert normalise.parse_audience_strength(" b ") == "B"
        with pytest.raises(ValueError, match="A, B, C, D, E"):
            normalise.parse_audience_strength("High")

    def test_phone_keeps_format_and_needs_digits(self) -> None:
        assert normalise.clean_phone(" +1  (415) 555-0100 ") == "+1 (415) 555-0100"
        with pytest.raises(ValueError, match="no digits"):
            normalise.clean_phone("n/a")
