"""Find and anonymize personal data (PII) in tabular data.

Three entry points, all accepting pandas, polars or pyarrow tables:

* :func:`scan_pii` samples rows and reports columns that look like personal data (emails, phone
  numbers valid in their numbering plan, Luhn-valid payment cards, IP addresses, mod-97-valid IBANs,
  person names by value and by column name, and addresses, dates of birth and national ids recognised
  by column name). Value evidence outweighs a column-name hint. Examples in the report are always
  masked.
* :func:`anonymize` applies per-column rules (``hash``, ``mask``, ``drop``, ``generalize``,
  ``null``) and returns the same table type it was given.
* :func:`find_raw_pii` tells which of the given PII columns still hold values that are not in an
  anonymized form (salted hash, mask, band or month), so callers can refuse to log them.

Pattern matching runs as vectorized polars regexes on a sample; the checks (Luhn, mod-97, IP parsing,
``phonenumbers`` validation, the name lists of :mod:`shipyard.data.pii_names`) run once per distinct
value that the regex already matched.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar, cast

import polars as pl
from blake3 import blake3
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.data.pii_names import NAME_SHAPE_RE, is_person_name
from shipyard.errors import InvalidInput

__all__ = [
    "PiiFinding",
    "PiiKind",
    "PiiReport",
    "Rule",
    "anonymize",
    "find_raw_pii",
    "scan_pii",
]

PiiKind = Literal[
    "email",
    "phone",
    "payment_card",
    "ip_address",
    "iban",
    "name",
    "address",
    "date_of_birth",
    "national_id",
]
RuleKind = Literal["hash", "mask", "drop", "generalize", "null"]
VALID_RULES: tuple[str, ...] = ("drop", "generalize", "hash", "mask", "null")

#: Weight of a column-name hint; combined with the value match share as ``1 - (1-share)(1-hint)``.
HINT_WEIGHT = 0.6
#: Below this share of matching values, values that can be checked (emails, phones, cards, IPs, IBANs)
#: contradict a column-name hint, and the hint is ignored.
CONTRADICTS_BELOW = 0.5
#: A bare ``name``/``first``/``last`` column hints at person names only when at least this share of its
#: values are known names (and most values are name-shaped): such columns also hold products and places.
WEAK_NAME_HINT_SHARE = 0.25
#: Regions tried, in order, for national phone numbers that start with a trunk ``0`` (no ``+``
#: country code). NANP-shaped numbers (``(415) 555-2671``, ``1-415-…``) are tried as ``US`` only.
PHONE_REGIONS: tuple[str, ...] = (
    "GB", "DE", "FR", "IT", "NL", "BE", "CH", "AT", "IE", "SE", "DK", "NO", "FI", "PL", "PT", "AU",
    "NZ", "IN", "BR",
)  # fmt: skip
_MAX_EXAMPLES = 3
_HASH_CONTEXT = "shipyard.data.pii anonymize hash v1"

T = TypeVar("T")

# --------------------------------------------------------------------------------------------------
# Value detectors: a vectorized candidate regex (polars / Rust regex syntax), then a Python check
# run only on the values the regex matched.
# --------------------------------------------------------------------------------------------------

_EMAIL_RE = (
    r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)
# Candidates: digits grouped by spaces, dots, dashes, slashes or parentheses, an optional "+" or "00"
# international prefix and an optional extension. phonenumbers then decides (see _is_phone).
_PHONE_RE = r"^\+?\(?[0-9][0-9 ().\/-]{5,22}[0-9](?:[ ]*(?i:x|ext\.?|extension|#)[ ]*[0-9]{1,6})?$"
_EXTENSION = re.compile(r"[ ]*(?:x|ext\.?|extension|#)[ ]*[0-9]{1,6}$", re.IGNORECASE)
# National numbers without a country code must look like one: a trunk "0" (most of Europe, the UK,
# India, Australia) or the NANP 3-3-4 layout with an optional leading 1 ("1-415-555-2671").
_TRUNK = re.compile(r"^\(?0[0-9]")
_NANP = re.compile(r"^(?:1[ .-]?)?\(?[2-9][0-9]{2}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}$")
_DATE_OR_IP = re.compile(r"^(?:[0-9]{4}([-/.])[0-9]{1,2}\1[0-9]{1,2}|[0-9]{1,2}([-/.])[0-9]{1,2}\2[0-9]{2,4}"
                         r"|[0-9]{1,3}(?:\.[0-9]{1,3}){3})$")  # fmt: skip
_CARD_RE = r"^[0-9](?:[0-9]|[ -][0-9]){12,22}$"
_IP_RE = r"^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"
_IBAN_RE = r"^[A-Za-z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]){11,30}$"


def _digits(value: str) -> str:
    return re.sub(r"[^0-9]", "", value)


def _is_phone(value: str) -> bool:
    """Whether ``value`` is a phone number that is valid in its numbering plan (per ``phonenumbers``).

    International numbers (``+`` or ``00``) are checked in their own plan; national ones must start with
    a trunk ``0`` (tried in the :data:`PHONE_REGIONS`) or have the NANP layout (tried as ``US``). Bare
    digit runs are ids, and dates and IPv4 addresses are never phones.

    Example:
        >>> [_is_phone(v) for v in ("030 12345678", "1-415-555-2671 x12", "(555) 123-4567", "4155552671")]
        [True, True, False, False]
    """
    import phonenumbers

    main = _EXTENSION.sub("", value)
    digits = _digits(main)
    if not 7 <= len(digits) <= 15 or digits == main or _DATE_OR_IP.match(main):
        return False
    if main.startswith("00"):
        value, main = "+" + value[2:], "+" + main[2:]
    regions: tuple[str | None, ...]
    if main.startswith("+"):
        regions = (None,)
    elif _TRUNK.match(main):
        regions = PHONE_REGIONS
    elif _NANP.match(main):
        regions = ("US",)
    else:
        return False
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def _luhn_valid(value: str) -> bool:
    """Whether a 13-19 digit number passes the Luhn checksum used by payment cards.

    Example:
        >>> _luhn_valid("4242 4242 4242 4242"), _luhn_valid("4242 4242 4242 4241")
        (True, False)
    """
    digits = _digits(value)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    """Whether an IBAN passes the ISO 13616 mod-97 check.

    Example:
        >>> _iban_valid("GB82 WEST 1234 5698 7654 32"), _iban_valid("GB00 WEST 1234 5698 7654 32")
        (True, False)
    """
    compact = value.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    labels = domain.split(".")
    return f"{local[:1]}***@{labels[0][:1]}***.{labels[-1]}"


def _mask_keep_last_digits(value: str, keep: int = 2) -> str:
    seen, out = 0, []
    total = sum(c.isdigit() for c in value)
    for char in value:
        if char.isdigit():
            seen += 1
            out.append(char if seen > total - keep else "*")
        else:
            out.append(char)
    return "".join(out)


def _mask_card(value: str) -> str:
    return "**** **** **** " + _digits(value)[-4:]


def _mask_iban(value: str) -> str:
    compact = value.replace(" ", "").upper()
    return compact[:2] + "*" * (len(compact) - 6) + compact[-4:]


def _mask_ip(value: str) -> str:
    sep = "." if "." in value and ":" not in value else ":"
    head, _, rest = value.partition(sep)
    return head + sep + re.sub(r"[0-9A-Za-z]", "*", rest)


def _mask_generic(value: str) -> str:
    """Keep the first character of each word; short values are fully hidden."""
    words = value.split()
    if len(value) <= 3 or not words:
        return "***"
    return " ".join(w[:1] + "***" for w in words)


@dataclass(frozen=True)
class _Detector:
    kind: PiiKind
    pattern: str
    check: Callable[[str], bool]
    mask: Callable[[str], str]
    #: What a matching value does, for the finding's reason ("pass the Luhn check").
    evidence: str
    #: Whether too few matching values contradict a column-name hint. Not for names: no list is complete.
    refutes: bool = True


_DETECTORS: tuple[_Detector, ...] = (
    _Detector("email", _EMAIL_RE, lambda v: True, _mask_email, "are email addresses"),
    _Detector("phone", _PHONE_RE, _is_phone, _mask_keep_last_digits, "are valid phone numbers"),
    _Detector("payment_card", _CARD_RE, _luhn_valid, _mask_card, "are card numbers passing the Luhn check"),
    _Detector("ip_address", _IP_RE, _ip_valid, _mask_ip, "are IP addresses"),
    _Detector("iban", _IBAN_RE, _iban_valid, _mask_iban, "are IBANs passing the mod-97 check"),
    _Detector("name", NAME_SHAPE_RE, is_person_name, _mask_generic, "are person names", refutes=False),
)

# --------------------------------------------------------------------------------------------------
# Column-name hints
# --------------------------------------------------------------------------------------------------

_HINT_TOKENS: dict[PiiKind, frozenset[str]] = {
    "email": frozenset({"email", "mail", "emailaddress"}),
    "phone": frozenset({"phone", "telephone", "tel", "mobile", "cell", "fax", "msisdn", "phonenumber"}),
    "payment_card": frozenset({"card", "cc", "ccnum", "pan", "creditcard", "cardnumber"}),
    "ip_address": frozenset({"ip", "ipv4", "ipv6", "ipaddress"}),
    "iban": frozenset({"iban"}),
    "name": frozenset({"surname", "forename", "firstname", "lastname", "fullname", "givenname"}),
    "address": frozenset({"address", "addr", "street", "zip", "zipcode", "postcode", "postal"}),
    "date_of_birth": frozenset({"dob", "birth", "birthday", "birthdate", "dateofbirth"}),
    "national_id": frozenset({"ssn", "passport", "nino", "nationalid", "taxid", "socialsecurity"}),
}
_NAME_QUALIFIERS = frozenset({"first", "last", "given", "family", "full", "middle", "maiden", "sur"})
_WEAK_NAME_WORDS = _NAME_QUALIFIERS | {"name", "names", "person", "people"}
_ID_BIGRAMS = frozenset({"nationalid", "taxid", "socialsecurity", "driverlicense", "driverslicense"})
_NOT_POSTAL = frozenset({"ip", "ipv4", "ipv6", "email", "mail", "mac", "wallet", "url", "web"})
_HINT_ONLY: tuple[PiiKind, ...] = ("address", "date_of_birth", "national_id")


def _name_tokens(column: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def _hinted_kinds(column: str) -> set[PiiKind]:
    """The PII kinds a column's name suggests, matched on whole tokens (so "hotel" is not "tel").

    Example:
        >>> sorted(_hinted_kinds("customerFirstName")), sorted(_hinted_kinds("ip_address"))
        (['name'], ['ip_address'])
    """
    tokens = _name_tokens(column)
    pairs = {a + b for a, b in zip(tokens, tokens[1:], strict=False)}
    words = set(tokens) | pairs
    kinds: set[PiiKind] = {kind for kind, hints in _HINT_TOKENS.items() if words & hints}
    if any(a in _NAME_QUALIFIERS and b == "name" for a, b in zip(tokens, tokens[1:], strict=False)):
        kinds.add("name")
    if pairs & _ID_BIGRAMS:
        kinds.add("national_id")
    if "address" in kinds and set(tokens) & _NOT_POSTAL:
        kinds.discard("address")
    return kinds


# --------------------------------------------------------------------------------------------------
# Report types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PiiFinding:
    """One column that looks like personal data of one kind.

    Attributes:
        column: The column name.
        kind: What the column seems to hold.
        confidence: In [0, 1]: ``1 - (1 - share) * (1 - hint)`` where ``share`` is the share of
            non-null sampled values that match and ``hint`` is ``HINT_WEIGHT`` if the name suggests
            this kind and the values do not contradict it (else 0).
        match_share: Share of non-null sampled values that matched the value detector (0 for
            kinds recognised by name only).
        name_hint: Whether the column name suggests this kind (even when the values overrule it).
        examples: Up to three matching values, masked; never raw.
        reason: Why, in words: how many sampled values matched and whether the name hint counted.
    """

    column: str
    kind: PiiKind
    confidence: float
    match_share: float
    name_hint: bool
    examples: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class PiiReport:
    """What :func:`scan_pii` found.

    Example:
        >>> import polars as pl
        >>> report = scan_pii(pl.DataFrame({"contact": ["ann@example.com", "bob@example.org"]}))
        >>> report.columns, report.findings[0].examples
        (['contact'], ('a***@e***.com', 'b***@e***.org'))
    """

    findings: tuple[PiiFinding, ...]
    rows_scanned: int
    columns_scanned: int

    @property
    def columns(self) -> list[str]:
        """Columns with at least one finding, in table order."""
        return list(dict.fromkeys(f.column for f in self.findings))

    def __bool__(self) -> bool:
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The report as a JSON string."""
        return json.dumps(self.to_dict())


# --------------------------------------------------------------------------------------------------
# Input conversion
# --------------------------------------------------------------------------------------------------


def _to_polars(data: object) -> pl.DataFrame:
    """Convert a pandas/polars/pyarrow table to polars once; anything else is refused."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__.split(".")[0]
    try:
        if module == "pandas":
            return pl.from_pandas(cast(Any, data))
        if module == "pyarrow":
            out = pl.from_arrow(cast(Any, data))
            if isinstance(out, pl.DataFrame):
                return out
    except Exception as exc:  # conversion errors vary by library; report them as bad input
        raise InvalidInput(f"Could not read the {type(data).__name__} as a table: {exc}") from exc
    raise InvalidInput(
        f"Expected a pandas, polars or pyarrow table, got {type(data).__name__}; "
        "convert it with pandas.DataFrame(...) first"
    )


def _like_input(frame: pl.DataFrame, original: T) -> T:
    """Return ``frame`` as the same table type as ``original`` (pandas keeps its index)."""
    if isinstance(original, pl.DataFrame):
        return cast(T, frame)
    if isinstance(original, pl.LazyFrame):
        return cast(T, frame.lazy())
    if type(original).__module__.startswith("pandas"):
        out = frame.to_pandas()
        out.index = cast(Any, original).index
        return cast(T, out)
    return cast(T, frame.to_arrow())


def _text_values(series: pl.Series) -> pl.Series:
    """Non-null, non-blank values of a string or integer column as stripped strings."""
    if series.dtype in (pl.Categorical, pl.Enum) or series.dtype.is_integer():
        series = series.cast(pl.Utf8)
    if series.dtype != pl.Utf8:
        return pl.Series(series.name, [], dtype=pl.Utf8)
    stripped = series.drop_nulls().str.strip_chars()
    return stripped.filter(stripped.str.len_chars() > 0)


# --------------------------------------------------------------------------------------------------
# scan_pii
# --------------------------------------------------------------------------------------------------


def _combine(share: float, hinted: bool) -> float:
    hint = HINT_WEIGHT if hinted else 0.0
    return round(1.0 - (1.0 - share) * (1.0 - hint), 4)


def _matches(det: _Detector, values: pl.Series) -> tuple[pl.Series, int]:
    """The values that pass ``det`` (checked once per distinct value) and how many were candidates."""
    candidates = values.filter(values.str.contains(det.pattern))
    passing = [v for v in candidates.unique(maintain_order=True).to_list() if det.check(v)]
    return candidates.filter(candidates.is_in(passing)), candidates.len()


def _hint_counts(det: _Detector, hints: set[PiiKind], share: float, shaped: float, weak_name: bool) -> bool:
    """Whether the column-name hint counts, given what the values say."""
    if det.kind in hints:
        return not (det.refutes and share < CONTRADICTS_BELOW)
    # A bare "name"/"first"/"last" also names products and places: only name-like values confirm it.
    return det.kind == "name" and weak_name and share >= WEAK_NAME_HINT_SHARE and shaped >= 0.8


def _reason(det: _Detector, matched: int, total: int, hinted: bool, counted: bool) -> str:
    said = f"{matched} of {total} sampled values {det.evidence}"
    if counted:
        return said + "; the column name suggests it too"
    if hinted:
        return f"the column name suggests {det.kind}, but only {said}: the values outweigh the name"
    return said


def _value_findings(column: str, values: pl.Series, hints: set[PiiKind]) -> list[PiiFinding]:
    found: list[PiiFinding] = []
    total = values.len()
    weak_name = bool(set(_name_tokens(column)) & _WEAK_NAME_WORDS)
    for det in _DETECTORS:
        matched, candidates = _matches(det, values) if total else (values, 0)
        hinted = det.kind in hints
        if matched.len() == 0 and not hinted:
            continue
        share = matched.len() / total if total else 0.0
        counted = _hint_counts(det, hints, share, candidates / total if total else 0.0, weak_name)
        examples = tuple(dict.fromkeys(det.mask(v) for v in matched.head(50).to_list()))
        if not examples and counted:  # a hinted column whose values no list knows: show their shape
            examples = tuple(dict.fromkeys(_mask_generic(v) for v in values.head(50).to_list()))
        found.append(
            PiiFinding(
                column, det.kind, _combine(share, counted), round(share, 4), hinted or counted,
                examples[:_MAX_EXAMPLES], _reason(det, matched.len(), total, hinted or counted, counted),
            )
        )  # fmt: skip
    return found


def _hint_findings(column: str, series: pl.Series, hints: set[PiiKind]) -> list[PiiFinding]:
    values = _text_values(series)
    examples = tuple(dict.fromkeys(_mask_generic(v) for v in values.head(50).to_list()))
    return [
        PiiFinding(
            column,
            kind,
            _combine(0.0, True),
            0.0,
            True,
            examples[:_MAX_EXAMPLES],
            f"recognised by the column name only ({kind.replace('_', ' ')})",
        )  # fmt: skip
        for kind in _HINT_ONLY
        if kind in hints
    ]


def scan_pii(data: Any, *, sample: int = 10_000, min_confidence: float = 0.5) -> PiiReport:
    """Find columns that look like personal data.

    Up to ``sample`` rows are drawn (deterministically) and each string or integer column is
    matched against the value detectors; every column's name is checked for hints. Columns with
    no non-null sampled values have no findings.

    Args:
        data: A pandas, polars or pyarrow table.
        sample: Rows to scan at most; larger tables are sampled with a fixed seed.
        min_confidence: Findings below this confidence are left out.

    Returns:
        A :class:`PiiReport` whose examples are masked.

    Raises:
        InvalidInput: ``data`` is not a supported table or ``sample`` is not positive.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"card": ["4242 4242 4242 4242"], "carrier": ["UA"]})
        >>> [(f.column, f.kind, f.examples) for f in scan_pii(df).findings]
        [('card', 'payment_card', ('**** **** **** 4242',))]
    """
    if sample < 1:
        raise InvalidInput(f"sample must be a positive number of rows, got {sample}")
    frame = _to_polars(data)
    if frame.height > sample:
        frame = frame.sample(n=sample, seed=0)
    findings: list[PiiFinding] = []
    for column in frame.columns:
        series = frame.get_column(column)
        if series.null_count() == series.len():
            continue
        hints = _hinted_kinds(column)
        found = _value_findings(column, _text_values(series), hints) + _hint_findings(column, series, hints)
        findings.extend(f for f in found if f.confidence >= min_confidence)
    return PiiReport(tuple(findings), rows_scanned=frame.height, columns_scanned=frame.width)


# --------------------------------------------------------------------------------------------------
# anonymize
# --------------------------------------------------------------------------------------------------


class Rule(BaseModel):
    """One column's anonymization rule.

    Attributes:
        kind: ``hash``, ``mask``, ``drop``, ``generalize`` or ``null``.
        keep: For ``mask``: how many trailing characters stay visible.
        width: For ``generalize`` on numbers: the band width (ages with 10 give "30-39").
        period: For ``generalize`` on dates/datetimes: ``month`` ("2013-07") or ``year`` ("2013").

    Example:
        >>> Rule(kind="mask", keep=4).keep
        4
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RuleKind
    keep: int = Field(default=4, ge=0)
    width: float = Field(default=10, gt=0)
    period: Literal["month", "year"] = "month"


RuleSpec = str | Mapping[str, Any] | Rule


def _rule_error(column: str, detail: str) -> InvalidInput:
    return InvalidInput(
        f"Bad anonymization rule for column {column!r}: {detail}; valid rules: {', '.join(VALID_RULES)} "
        '(e.g. "hash", {"mask": 4}, {"generalize": 10}, {"generalize": "year"})',
        details={"column": column, "valid_rules": list(VALID_RULES)},
    )


def _parse_rule(column: str, spec: RuleSpec) -> Rule:
    """Turn ``"hash"``, ``{"mask": 4}``, ``{"generalize": 10}`` or a :class:`Rule` into a Rule."""
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        fields: dict[str, Any] = {"kind": spec}
    elif isinstance(spec, Mapping) and len(spec) == 1:
        kind, arg = next(iter(spec.items()))
        fields = {"kind": kind}
        if kind == "mask":
            fields["keep"] = arg
        elif kind == "generalize":
            fields["period" if isinstance(arg, str) else "width"] = arg
        elif arg not in (None, True):
            raise _rule_error(column, f"rule {kind!r} takes no argument, got {arg!r}")
    else:
        raise _rule_error(column, f"expected a rule name or a one-key mapping, got {spec!r}")
    try:
        return Rule(**fields)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise _rule_error(column, f"{spec!r} is not valid ({problems})") from None


def _hash_key(salt: str | bytes | None) -> bytes:
    if not salt:
        raise InvalidInput(
            "The 'hash' rule needs a non-empty salt: pass anonymize(..., salt=...) with a secret "
            "kept out of the data (e.g. from a secret manager), the same one for tables you join"
        )
    raw = salt.encode() if isinstance(salt, str) else salt
    return blake3(raw, derive_key_context=_HASH_CONTEXT).digest()


def _hash_series(series: pl.Series, key: bytes) -> pl.Series:
    """Keyed BLAKE3 of each value's text, hex; hashed once per distinct value."""
    text = series.cast(pl.Utf8)
    distinct = text.drop_nulls().unique()
    digests = [blake3(v.encode(), key=key).hexdigest() for v in distinct.to_list()]
    return text.replace_strict(distinct, pl.Series(digests, dtype=pl.Utf8), default=None).alias(series.name)


def _mask_expr(column: str, keep: int) -> pl.Expr:
    text = pl.col(column).cast(pl.Utf8)
    stars = r"(?s)."
    tail = text.str.tail(keep) if keep else pl.lit("")
    partial = pl.concat_str([text.str.head(-keep).str.replace_all(stars, "*"), tail]) if keep else None
    everything = text.str.replace_all(stars, "*")
    if partial is None:
        return everything.alias(column)
    # A value no longer than `keep` would be shown whole: hide it entirely instead.
    return pl.when(text.str.len_chars() <= keep).then(everything).otherwise(partial).alias(column)


def _band_label(value: float | None, width: float, integral: bool) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    low = math.floor(value / width) * width
    if integral:
        return f"{int(low)}-{int(low + width - 1)}"
    return f"{low:g}-{low + width:g}"


def _generalize(series: pl.Series, rule: Rule) -> pl.Series:
    dtype = series.dtype
    if dtype.is_temporal() and dtype != pl.Time and dtype != pl.Duration:
        fmt = "%Y-%m" if rule.period == "month" else "%Y"
        return series.dt.strftime(fmt)
    if dtype.is_numeric():
        integral = dtype.is_integer() and float(rule.width).is_integer()
        labels = [_band_label(v, rule.width, integral) for v in series.to_list()]
        return pl.Series(series.name, labels, dtype=pl.Utf8)
    raise _rule_error(
        series.name, f"'generalize' needs a numeric, date or datetime column, but it is {dtype}"
    )


def _apply_rule(frame: pl.DataFrame, column: str, rule: Rule, key: bytes | None) -> pl.DataFrame:
    if rule.kind == "drop":
        return frame.drop(column)
    if rule.kind == "null":
        return frame.with_columns(pl.lit(None, dtype=frame.schema[column]).alias(column))
    if rule.kind == "mask":
        return frame.with_columns(_mask_expr(column, rule.keep))
    if rule.kind == "hash":
        assert key is not None  # _hash_key ran first for any hash rule
        return frame.with_columns(_hash_series(frame.get_column(column), key))
    return frame.with_columns(_generalize(frame.get_column(column), rule))


def anonymize(data: T, rules: Mapping[str, RuleSpec], *, salt: str | bytes | None = None) -> T:
    """Anonymize columns by rule and return the same table type as the input.

    Rules: ``hash`` (salted, keyed BLAKE3, 64 hex chars; the same salt gives the same output, so
    pseudonymized keys still join across tables), ``{"mask": N}`` (keep the last N characters,
    the rest become ``*``; values of N characters or fewer are fully masked), ``drop``,
    ``{"generalize": W}`` (numbers to bands of width W, e.g. "30-39"; dates and datetimes to the
    month "2013-07", or ``{"generalize": "year"}``), ``null``.

    Args:
        data: A pandas, polars or pyarrow table.
        rules: Column name to rule: a name, a one-key mapping, or a :class:`Rule`.
        salt: Secret for ``hash``; required (and non-empty) when any column is hashed.

    Returns:
        A new table of the same type; other columns are unchanged.

    Raises:
        InvalidInput: Unknown column, unknown or malformed rule, or missing salt for ``hash``.

    Example:
        >>> import polars as pl
        >>> df = pl.DataFrame({"email": ["ann@example.com"], "age": [34], "phone": ["555-123-4567"]})
        >>> out = anonymize(df, {"email": "hash", "age": {"generalize": 10}, "phone": {"mask": 4}},
        ...                 salt="s3cret")
        >>> out.row(0)[1:], len(out.row(0)[0])
        (('30-39', '********4567'), 64)
    """
    frame = _to_polars(data)
    parsed: dict[str, Rule] = {}
    for column, spec in rules.items():
        if column not in frame.columns:
            raise _rule_error(column, f"no such column (columns: {', '.join(frame.columns)})")
        parsed[column] = _parse_rule(column, spec)
    key = _hash_key(salt) if any(r.kind == "hash" for r in parsed.values()) else None
    for column, rule in parsed.items():
        try:
            frame = _apply_rule(frame, column, rule, key)
        except pl.exceptions.PolarsError as exc:
            first_line = str(exc).splitlines()[0]
            raise _rule_error(
                column, f"{rule.kind!r} failed on {frame.schema[column]} values ({first_line})"
            ) from exc
    return _like_input(frame, data)


# --------------------------------------------------------------------------------------------------
# find_raw_pii
# --------------------------------------------------------------------------------------------------

# Forms anonymize() produces: a 64-hex hash, a mask (leading '*'), a numeric band, a month or year.
_ANONYMIZED_RE = (
    r"^(?:[0-9a-f]{64}|\*.*|-?[0-9][0-9.e+]*--?[0-9][0-9.e+]*"
    r"|(?:1[89]|20)[0-9]{2}(?:-(?:0[1-9]|1[0-2]))?)$"
)


def find_raw_pii(data: Any, columns: list[str] | tuple[str, ...], *, sample: int = 10_000) -> list[str]:
    """Which of the given PII columns still hold raw-looking values.

    A column passes (is not raw) when it is absent (dropped), all null, or every non-null sampled
    value has a form :func:`anonymize` produces: a 64-hex hash, a mask starting with ``*``, a band
    such as ``30-39``, or a month/year. Anything else — including plain numbers and dates — is raw,
    because the caller has already said the column is personal data.

    Args:
        data: A pandas, polars or pyarrow table.
        columns: Columns the caller (e.g. a data contract) marks as PII.
        sample: Rows to check at most.

    Returns:
        The raw columns, in the order given.

    Example:
        >>> import polars as pl
        >>> df = pl.DataFrame({"email": ["ann@example.com"], "phone": ["*******4567"]})
        >>> find_raw_pii(df, ["email", "phone", "ssn"])
        ['email']
    """
    frame = _to_polars(data)
    if frame.height > sample:
        frame = frame.sample(n=sample, seed=0)
    raw: list[str] = []
    for column in columns:
        if column not in frame.columns:
            continue
        series = frame.get_column(column).drop_nulls()
        if series.len() == 0:
            continue
        if series.dtype != pl.Utf8 or not series.str.contains(_ANONYMIZED_RE).all():
            raw.append(column)
    return raw
