"""Normalising the values that duplicate checks compare: emails, websites, numbers, dates.

Exports to Dynamics match accounts by exact website and contacts by exact email, so both sides
must be reduced to one canonical form before they are stored. Each parser returns the clean
value or raises `ValueError` whose message is the reason a loader writes into its reject file,
so the messages are short sentences a person can act on.
"""

from __future__ import annotations

import re
from datetime import date

_EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DIGIT_RE = re.compile(r"\d")
_SPACES_RE = re.compile(r"\s+")
_INT_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.0+)?$|^\d+(?:\.0+)?$")

# A hand-written registrable-domain rule instead of `tldextract`: that library wants the Public
# Suffix List (a download, or a bundled snapshot that goes stale), while company websites in B2B
# data sit almost entirely under one-label suffixes plus this short list of two-label ones.
_TWO_LABEL_SUFFIXES = frozenset(
    f"{second}.{top}"
    for top, seconds in {
        "uk": ("co", "org", "ac", "gov", "ltd", "plc", "me", "net"),
        "au": ("com", "net", "org", "edu", "gov"),
        "nz": ("co", "org", "net", "govt", "ac"),
        "jp": ("co", "ne", "or", "ac", "go"),
        "br": ("com", "net", "org", "gov"),
        "cn": ("com", "net", "org", "gov", "edu"),
        "in": ("co", "net", "org", "firm", "gen", "ind"),
        "za": ("co", "org", "net", "gov"),
        "mx": ("com", "org", "gob"),
        "ar": ("com", "org", "gob"),
        "tr": ("com", "org", "net", "gov"),
        "kr": ("co", "or", "ne", "go"),
        "sg": ("com", "org", "net", "gov", "edu"),
        "hk": ("com", "org", "net", "gov", "edu"),
        "tw": ("com", "org", "net", "gov", "edu"),
        "il": ("co", "org", "net", "ac", "gov"),
        "my": ("com", "org", "net", "gov", "edu"),
        "id": ("co", "or", "ac", "go", "web"),
        "th": ("co", "or", "ac", "go", "in"),
        "ph": ("com", "org", "net", "gov", "edu"),
        "pk": ("com", "org", "net", "gov", "edu"),
        "ng": ("com", "org", "net", "gov", "edu"),
        "eg": ("com", "org", "net", "gov", "edu"),
        "sa": ("com", "org", "net", "gov", "edu"),
        "ae": ("co", "org", "net", "gov", "ac"),
        "ua": ("com", "org", "net", "gov", "in"),
        "vn": ("com", "org", "net", "gov", "edu"),
        "pe": ("com", "org", "net", "gob", "edu"),
        "co": ("com", "org", "net", "gov", "edu"),
    }.items()
    for second in seconds
)


def normalise_email(value: str) -> str:
    """Lower-cased: Dynamics compares emails case-insensitively, so must our duplicate checks."""
    address = value.strip().lower()
    if not _EMAIL_RE.match(address) or ".." in address:
        raise ValueError("not an email address (expected name@example.com)")
    return address


def registrable_domain(value: str) -> str:
    """The domain a company owns, from whatever was typed as its website.

    `https://www.Example.co.uk:443/about?x=1` becomes `example.co.uk`: scheme, credentials,
    port, path, `www.` and any deeper sub-domain go, because `shop.example.com` and
    `example.com` are the same company for duplicate checks.
    """
    host = _SCHEME_RE.sub("", value.strip().lower())
    host = re.split(r"[/?#\\]", host, maxsplit=1)[0]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in _ascii_labels(labels)):
        raise ValueError("not a web address (expected example.com or https://www.example.com)")
    if labels[-1].isdigit():
        raise ValueError("an IP address is not a company domain (expected example.com)")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    if len(labels) < keep:
        raise ValueError(f"'{host}' is a public suffix, not a company domain")
    return ".".join(labels[-keep:])


def _ascii_labels(labels: list[str]) -> list[str]:
    """Internationalised labels are checked in their punycode form, and stored as typed."""
    out = []
    for label in labels:
        if label.isascii():
            out.append(label)
            continue
        try:
            out.append("xn--" + label.encode("punycode").decode("ascii"))
        except UnicodeError:
            out.append("")
    return out


def clean_phone(value: str) -> str:
    """Phones are kept as written (formats differ per country) with runs of spaces collapsed."""
    phone = value.strip()
    if "  " in phone or "\t" in phone:
        phone = _SPACES_RE.sub(" ", phone)
    if _DIGIT_RE.search(phone) is None:
        raise ValueError("not a phone number (no digits)")
    return phone


def parse_whole_number(value: str) -> int:
    """A count or an amount: `1200`, `1,200` and `1200.0` (spreadsheet exports) are all 1200.

    Fractions, signs, currency symbols and suffixes such as `1.2M` are refused rather than
    guessed at: a wrong revenue is worse than a missing one.
    """
    text = value.strip()
    if not _INT_RE.match(text):
        raise ValueError("not a whole number (expected digits such as 1200 or 1,200)")
    return int(text.split(".", 1)[0].replace(",", ""))


def parse_score(value: str) -> int:
    """Intent signal scores run from 0 to 100."""
    score = parse_whole_number(value)
    if score > 100:
        raise ValueError("score must be between 0 and 100")
    return score


def parse_iso_date(value: str) -> date:
    """Issue dates are ISO calendar dates; a timestamp is cut to its date part."""
    text = value.strip()
    if len(text) > 10 and text[10] in "T ":
        text = text[:10]
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date (expected YYYY-MM-DD)") from None


AUDIENCE_STRENGTHS = ("A", "B", "C", "D", "E")


def parse_audience_strength(value: str) -> str:
    """Audience strength is a grade from A (strongest) to E, as the platform reports it."""
    grade = value.strip().upper()
    if grade not in AUDIENCE_STRENGTHS:
        raise ValueError("audience strength must be one of A, B, C, D, E")
    return grade
