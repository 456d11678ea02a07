"""Deterministic, realistic sample data: companies, their contacts and intent signals.

Used by `gtmsync demo` (a few hundred companies straight into the database), by
`gtmsync data sample --out DIR` (CSV files the loader reads) and by the load benchmark
(a million contacts). The same seed gives byte-identical files.

Speed matters at benchmark size, and Faker is slow per call, so Faker (seeded) only fills
small pools of names, streets and postcodes once; every row is then assembled from those
pools with a `random.Random(seed)`. Rows stream out as generators, so memory stays flat
except for a small per-company index (ID, domain, location) that contacts and signals need.

Choices worth knowing:
- Platform IDs are stable: companies `C` + 9 digits, contacts `P` + 9 digits, intent signals
  `S` + 9 digits, numbered from 1 in generation order.
- Audience strength is a grade from A (strongest) to E, as the platform reports it.
- Issue dates fall in the 13 weeks before a fixed anchor date (never "today"), so output
  does not depend on when it is generated.
- About 3% of contacts have no company (their email is on a personal domain) and about 7%
  have no email.
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

from faker import Faker
from sqlalchemy.orm import Session

from gtmsync.platform.loaders import SPECS, Kind, upsert_records

INDUSTRIES: dict[str, tuple[int, int]] = {
    # industry -> revenue per employee range in USD, so revenue fits the headcount
    "Software": (150_000, 450_000),
    "Information Technology Services": (90_000, 220_000),
    "Financial Services": (200_000, 600_000),
    "Banking": (250_000, 700_000),
    "Insurance": (250_000, 650_000),
    "Healthcare": (80_000, 200_000),
    "Hospitals & Clinics": (70_000, 160_000),
    "Pharmaceuticals": (300_000, 900_000),
    "Manufacturing": (150_000, 400_000),
    "Retail": (120_000, 350_000),
    "Wholesale": (400_000, 1_200_000),
    "Telecommunications": (300_000, 800_000),
    "Education": (50_000, 120_000),
    "Energy & Utilities": (400_000, 1_500_000),
    "Construction": (150_000, 350_000),
    "Transportation & Logistics": (120_000, 300_000),
    "Media & Internet": (150_000, 500_000),
    "Real Estate": (200_000, 600_000),
    "Hospitality": (50_000, 130_000),
    "Business Services": (90_000, 250_000),
    "Government": (80_000, 180_000),
    "Non-Profit": (40_000, 110_000),
    "Agriculture": (100_000, 300_000),
    "Automotive": (250_000, 700_000),
}
TOPICS = (
    "Cloud Security",
    "CRM Software",
    "Data Warehousing",
    "Marketing Automation",
    "Endpoint Security",
    "Sales Intelligence",
    "Customer Data Platform",
    "Identity and Access Management",
    "Business Intelligence",
    "ERP Software",
    "Contact Center Software",
    "Data Privacy",
    "Kubernetes",
    "Zero Trust",
    "Account-Based Marketing",
    "HR Software",
    "Supply Chain Management",
    "Payment Processing",
    "Generative AI",
    "Digital Transformation",
)
DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "HR",
    "Operations",
    "IT",
    "Legal",
    "C-Suite",
)
MANAGEMENT_LEVELS = ("C-Level", "VP-Level", "Director", "Manager", "Non-Manager")
AUDIENCE_STRENGTHS = ("A", "B", "C", "D", "E")
ISSUE_DATE_ANCHOR = date(2026, 11, 2)

# Cumulative weights: `choices` would otherwise re-add them on every one of a million calls.
_LEVEL_WEIGHTS = tuple(accumulate((0.04, 0.08, 0.15, 0.25, 0.48)))
_DEPARTMENT_WEIGHTS = tuple(accumulate((0.22, 0.14, 0.2, 0.08, 0.06, 0.12, 0.12, 0.06)))
_DEPARTMENT_NAMES = {"HR": "Human Resources", "IT": "IT"}
_STAFF_TITLES = {
    "Sales": ("Account Executive", "Sales Development Representative", "Account Manager"),
    "Marketing": ("Marketing Specialist", "Content Strategist", "Demand Generation Specialist"),
    "Engineering": ("Software Engineer", "Senior Software Engineer", "QA Engineer"),
    "Finance": ("Financial Analyst", "Accountant", "Controller"),
    "HR": ("Recruiter", "HR Generalist", "People Partner"),
    "Operations": ("Operations Analyst", "Project Coordinator", "Program Manager"),
    "IT": ("Systems Administrator", "Network Engineer", "Help Desk Analyst"),
    "Legal": ("Paralegal", "Corporate Counsel", "Compliance Analyst"),
}
_CHIEFS = (
    "Chief Executive Officer",
    "Chief Financial Officer",
    "Chief Technology Officer",
    "Chief Operating Officer",
    "Chief Marketing Officer",
    "Chief Revenue Officer",
    "Chief Information Officer",
)
_PERSONAL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me")


@dataclass(frozen=True)
class _Country:
    code: str
    name: str
    locale: str
    weight: float
    cities: tuple[tuple[str, str], ...]  # (city, state/region)
    tlds: tuple[str, ...]
    phone: str  # format with {a} {b} {c} digit groups
    suffixes: tuple[str, ...]


_COUNTRIES = (
    _Country(
        "US",
        "United States",
        "en_US",
        0.62,
        (
            ("New York", "NY"),
            ("San Francisco", "CA"),
            ("Los Angeles", "CA"),
            ("San Jose", "CA"),
            ("Seattle", "WA"),
            ("Austin", "TX"),
            ("Dallas", "TX"),
            ("Houston", "TX"),
            ("Chicago", "IL"),
            ("Boston", "MA"),
            ("Atlanta", "GA"),
            ("Denver", "CO"),
            ("Miami", "FL"),
            ("Phoenix", "AZ"),
            ("Minneapolis", "MN"),
            ("Raleigh", "NC"),
            ("Salt Lake City", "UT"),
            ("Pittsburgh", "PA"),
            ("Nashville", "TN"),
            ("Portland", "OR"),
        ),
        (".com", ".com", ".com", ".com", ".io", ".net", ".ai", ".co"),
        "+1 {a:03d}-555-{c:04d}",
        ("Inc.", "LLC", "Corp.", "Group", "Technologies", "Systems", "Partners", "Labs"),
    ),
    _Country(
        "GB",
        "United Kingdom",
        "en_GB",
        0.14,
        (
            ("London", "England"),
            ("Manchester", "England"),
            ("Birmingham", "England"),
            ("Leeds", "England"),
            ("Bristol", "England"),
            ("Edinburgh", "Scotland"),
            ("Glasgow", "Scotland"),
            ("Cardiff", "Wales"),
            ("Belfast", "Northern Ireland"),
        ),
        (".co.uk", ".co.uk", ".com", ".io"),
        "+44 20 {b:04d} {c:04d}",
        ("Ltd", "PLC", "Group", "Holdings", "Solutions", "Partners"),
    ),
    _Country(
        "DE",
        "Germany",
        "de_DE",
        0.1,
        (
            ("Berlin", "Berlin"),
            ("München", "Bayern"),
            ("Hamburg", "Hamburg"),
            ("Köln", "Nordrhein-Westfalen"),
            ("Frankfurt am Main", "Hessen"),
            ("Stuttgart", "Baden-Württemberg"),
            ("Düsseldorf", "Nordrhein-Westfalen"),
            ("Leipzig", "Sachsen"),
        ),
        (".de", ".de", ".com"),
        "+49 30 {b:04d}{c:04d}",
        ("GmbH", "AG", "GmbH & Co. KG", "SE"),
    ),
    _Country(
        "FR",
        "France",
        "fr_FR",
        0.08,
        (
            ("Paris", "Île-de-France"),
            ("Lyon", "Auvergne-Rhône-Alpes"),
            ("Marseille", "Provence-Alpes-Côte d'Azur"),
            ("Toulouse", "Occitanie"),
            ("Nantes", "Pays de la Loire"),
            ("Lille", "Hauts-de-France"),
        ),
        (".fr", ".fr", ".com"),
        "+33 1 {b:04d} {c:04d}",
        ("SA", "SAS", "SARL", "Groupe"),
    ),
    _Country(
        "CA",
        "Canada",
        "en_CA",
        0.06,
        (
            ("Toronto", "ON"),
            ("Vancouver", "BC"),
            ("Montreal", "QC"),
            ("Calgary", "AB"),
            ("Ottawa", "ON"),
        ),
        (".ca", ".com", ".ca"),
        "+1 {a:03d}-555-{c:04d}",
        ("Inc.", "Ltd.", "Corp.", "Group", "Technologies"),
    ),
)
_COMPANY_WORDS = (
    "Blue",
    "North",
    "Summit",
    "Vertex",
    "Bright",
    "Harbor",
    "Pioneer",
    "Quantum",
    "Cedar",
    "Atlas",
    "Nimbus",
    "Granite",
    "Silver",
    "Evergreen",
    "Beacon",
    "Orbit",
    "Keystone",
    "Lumen",
    "Meridian",
    "Falcon",
)
_COMPANY_NOUNS = (
    "Analytics",
    "Data",
    "Health",
    "Logistics",
    "Capital",
    "Energy",
    "Networks",
    "Foods",
    "Robotics",
    "Media",
    "Software",
    "Dynamics",
    "Cloud",
    "Security",
    "Materials",
    "Bio",
)

COMPANY_COLUMNS = SPECS[Kind.COMPANIES].names
CONTACT_COLUMNS = SPECS[Kind.CONTACTS].names
INTENT_COLUMNS = SPECS[Kind.INTENT].names

Row = dict[str, str]


@dataclass(frozen=True)
class SampleSummary:
    companies: int
    contacts: int
    intent_signals: int


@dataclass(frozen=True)
class SampleFiles:
    companies: Path
    contacts: Path
    intent: Path
    summary: SampleSummary


@dataclass(frozen=True)
class _Pools:
    first: dict[str, tuple[str, ...]]
    last: dict[str, tuple[str, ...]]
    streets: dict[str, tuple[str, ...]]
    postcodes: dict[str, tuple[str, ...]]


def _pools(seed: int, size: int = 400) -> _Pools:
    first: dict[str, tuple[str, ...]] = {}
    last: dict[str, tuple[str, ...]] = {}
    streets: dict[str, tuple[str, ...]] = {}
    postcodes: dict[str, tuple[str, ...]] = {}
    for country in _COUNTRIES:
        fake = Faker(country.locale)
        fake.seed_instance(seed)
        first[country.code] = tuple(dict.fromkeys(fake.first_name() for _ in range(size)))
        last[country.code] = tuple(dict.fromkeys(fake.last_name() for _ in range(size)))
        streets[country.code] = tuple(
            f"{fake.building_number()} {fake.street_name()}"
            if country.locale.startswith("en")
            else f"{fake.street_name()} {fake.building_number()}"
            for _ in range(size // 2)
        )
        postcodes[country.code] = tuple(fake.postcode() for _ in range(size // 2))
    return _Pools(first, last, streets, postcodes)


@lru_cache(maxsize=8192)
def _ascii_slug(text: str, sep: str = "") -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return sep.join(re.findall(r"[a-z0-9]+", plain.lower()))


@dataclass(frozen=True)
class _CompanyRef:
    platform_id: str
    domain: str
    country: _Country
    city: str
    state: str
    phone: str


class _Generator:
    """Holds the seeded pools and the per-company index shared by the three streams."""

    def __init__(self, *, companies: int, contacts_per_company: int, seed: int) -> None:
        if companies < 0 or contacts_per_company < 0:
            raise ValueError("companies and contacts_per_company must be 0 or more")
        self.n_companies = companies
        self.per_company = contacts_per_company
        self.seed = seed
        self.pools = _pools(seed)
        self.refs: list[_CompanyRef] = []

    def companies(self) -> Iterator[Row]:
        rng = random.Random(f"{self.seed}:companies")  # noqa: S311 - sample data, no secrets
        weights = [c.weight for c in _COUNTRIES]
        industries = list(INDUSTRIES)
        names: set[str] = set()
        domains: set[str] = set()
        self.refs = []
        for i in range(1, self.n_companies + 1):
            country = rng.choices(_COUNTRIES, weights)[0]
            name, stem = self._company_name(rng, country, names)
            tld = rng.choice(country.tlds)
            domain = f"{stem}{tld}"
            n = 2
            while domain in domains:
                domain = f"{stem}{n}{tld}"
                n += 1
            domains.add(domain)
            city, state = rng.choice(country.cities)
            industry = rng.choice(industries)
            employees = max(1, int(10 ** rng.uniform(0.5, 4.7)))
            low, high = INDUSTRIES[industry]
            revenue = round(employees * rng.uniform(low, high), -3)
            phone = country.phone.format(
                a=rng.randint(201, 989), b=rng.randint(1000, 9999), c=rng.randint(0, 9999)
            )
            ref = _CompanyRef(f"C{i:09d}", domain, country, city, state, phone)
            self.refs.append(ref)
            description = (
                f"{name} is a {industry.lower()} company based in {city}, {country.name}, "
                f"with about {employees:,} employees."
            )
            if rng.random() < 0.02:
                description += f'\nFounded in {rng.randint(1950, 2022)}; "customer first".'
            yield {
                "platform_id": ref.platform_id,
                "name": name,
                "website": rng.choice(
                    (
                        f"https://www.{domain}",
                        f"https://www.{domain}",
                        f"http://{domain}",
                        f"www.{domain}",
                        f"https://{domain}/",
                    )
                ),
                "domain": "",
                "phone": phone,
                "industry": industry,
                "employee_count": str(employees),
                "revenue": str(int(revenue)),
                "street": rng.choice(self.pools.streets[country.code]),
                "city": city,
                "state": state,
                "postal_code": rng.choice(self.pools.postcodes[country.code]),
                "country": country.name,
                "description": description,
            }

    def _company_name(
        self, rng: random.Random, country: _Country, taken: set[str]
    ) -> tuple[str, str]:
        """A unique name and the slug its domain is built on (exact-name duplicate checks)."""
        lasts = self.pools.last[country.code]
        for _attempt in range(20):
            shape = rng.random()
            if shape < 0.4:
                core = rng.choice(lasts)
            elif shape < 0.6:
                core = f"{rng.choice(lasts)} & {rng.choice(lasts)}"
            else:
                core = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_NOUNS)}"
            name = f"{core} {rng.choice(country.suffixes)}"
            if name not in taken:
                break
        else:
            name = f"{core} {len(taken)} {rng.choice(country.suffixes)}"
        taken.add(name)
        return name, _ascii_slug(core) or "company"

    def contacts(self) -> Iterator[Row]:
        if len(self.refs) != self.n_companies:
            for _ in self.companies():
                pass
        rng = random.Random(f"{self.seed}:contacts")  # noqa: S311 - sample data, no secrets
        departments = DEPARTMENTS[:-1]
        number = 0
        for ref in self.refs:
            used: set[str] = set()
            for _ in range(self.per_company):
                number += 1
                orphan = rng.random() < 0.03
                first = rng.choice(self.pools.first[ref.country.code])
                last = rng.choice(self.pools.last[ref.country.code])
                level = rng.choices(MANAGEMENT_LEVELS, cum_weights=_LEVEL_WEIGHTS)[0]
                if level == "C-Level":
                    department, title = "C-Suite", rng.choice(_CHIEFS)
                else:
                    department = rng.choices(departments, cum_weights=_DEPARTMENT_WEIGHTS)[0]
                    title = _title(rng, level, department)
                email = ""
                if rng.random() >= 0.07:
                    local = f"{_ascii_slug(first, '')}.{_ascii_slug(last, '')}".strip(".") or "info"
                    domain = rng.choice(_PERSONAL_DOMAINS) if orphan else ref.domain
                    candidate, n = local, 2
                    while candidate in used:
                        candidate = f"{local}{n}"
                        n += 1
                    used.add(candidate)
                    email = f"{candidate}@{domain}"
                yield {
                    "platform_id": f"P{number:09d}",
                    "first_name": first,
                    "last_name": last,
                    "company_platform_id": "" if orphan else ref.platform_id,
                    "email": email,
                    "direct_phone": "" if orphan else f"{ref.phone} x{rng.randint(100, 999)}",
                    "mobile_phone": ref.country.phone.format(
                        a=rng.randint(201, 989), b=rng.randint(1000, 9999), c=rng.randint(0, 9999)
                    )
                    if rng.random() < 0.6
                    else "",
                    "job_title": title,
                    "department": department,
                    "management_level": level,
                }

    def intent(self) -> Iterator[Row]:
        if len(self.refs) != self.n_companies:
            for _ in self.companies():
                pass
        rng = random.Random(f"{self.seed}:intent")  # noqa: S311 - sample data, no secrets
        number = 0
        for ref in self.refs:
            if rng.random() >= 0.35:
                continue
            for topic in rng.sample(TOPICS, rng.randint(1, 3)):
                number += 1
                score = rng.randint(30, 100)
                grade = AUDIENCE_STRENGTHS[min(4, max(0, (100 - score) // 15 + rng.randint(-1, 1)))]
                if rng.random() < 0.7:
                    location = f"{ref.city}, {ref.state}, {ref.country.code}"
                else:
                    other = rng.choice(_COUNTRIES)
                    city, state = rng.choice(other.cities)
                    location = f"{city}, {state}, {other.code}"
                yield {
                    "signal_id": f"S{number:09d}",
                    "company_platform_id": ref.platform_id,
                    "topic": topic,
                    "signal_score": str(score),
                    "audience_strength": grade,
                    "signal_location": location,
                    "issue_date": (
                        ISSUE_DATE_ANCHOR - timedelta(days=rng.randint(0, 90))
                    ).isoformat(),
                }


def _title(rng: random.Random, level: str, department: str) -> str:
    label = _DEPARTMENT_NAMES.get(department, department)
    if level == "VP-Level":
        return f"VP of {label}"
    if level == "Director":
        return f"Director of {label}"
    if level == "Manager":
        return f"{label} Manager"
    return rng.choice(_STAFF_TITLES[department])


def write_sample_files(
    out_dir: Path, *, companies: int, contacts_per_company: int = 5, seed: int = 42
) -> SampleFiles:
    """Write companies.csv, contacts.csv and intent.csv into `out_dir` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = _Generator(companies=companies, contacts_per_company=contacts_per_company, seed=seed)
    paths = (out_dir / "companies.csv", out_dir / "contacts.csv", out_dir / "intent.csv")
    counts = [
        _write_csv(paths[0], COMPANY_COLUMNS, gen.companies()),
        _write_csv(paths[1], CONTACT_COLUMNS, gen.contacts()),
        _write_csv(paths[2], INTENT_COLUMNS, gen.intent()),
    ]
    return SampleFiles(*paths, summary=SampleSummary(*counts))


def _write_csv(path: Path, columns: list[str], rows: Iterator[Row]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
            count += 1
    return count


def generate_sample(
    session: Session, *, companies: int, contacts_per_company: int = 5, seed: int = 42
) -> SampleSummary:
    """Generate straight into the database in the caller's transaction (the demo's seed)."""
    gen = _Generator(companies=companies, contacts_per_company=contacts_per_company, seed=seed)
    counts = []
    for kind, rows in (
        (Kind.COMPANIES, gen.companies()),
        (Kind.CONTACTS, gen.contacts()),
        (Kind.INTENT, gen.intent()),
    ):
        result, rejects = upsert_records(session, kind, rows)
        if result.rejected:
            first = rejects.lines[0]
            raise RuntimeError(f"sample {kind} row {first[0]} was rejected: {first}")
        counts.append(result.loaded)
    return SampleSummary(*counts)
