"""Recognise person names by value, with the first- and last-name lists that Faker ships.

Faker (MIT licence, offline, maintained) carries per-locale name lists drawn from census and registry data;
:func:`name_lists` merges the Latin-script locales in :data:`NAME_LOCALES` (about 5,500 first names and
8,800 last names). They are loaded lazily, once, on the first name check, so ``import shipyard`` never pays
for them.

A value is a person name (:func:`is_person_name`) when it is one to five words of letters (initials such as
``J.`` and particles such as ``van``/``de`` allowed, ``Last, First`` order too), none of them a place or
organisation word (``Airport``, ``County``, ``Inc``, ``Lake``, …: :data:`NOT_NAME_WORDS`), and

* a single word is a known first or last name;
* several words include a known first name and at most one word that is on neither list (the rare
  surname: ``Marie Curie``).

Place, company and product names that still pass (a city called ``Austin``) are the false positives; the
rates measured on real lists are in ``docs/data-pii.md``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import import_module

from shipyard.errors import MissingExtra

__all__ = ["NAME_LOCALES", "NAME_SHAPE_RE", "NOT_NAME_WORDS", "is_person_name", "name_lists"]

#: Faker locales whose first/last names are merged (Latin script: values are matched case-insensitively).
NAME_LOCALES: tuple[str, ...] = (
    "en_US", "en_GB", "en_IE", "de_DE", "de_AT", "fr_FR", "es_ES", "es_MX", "it_IT", "nl_NL",
    "pt_BR", "pt_PT", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ",
)  # fmt: skip

#: Candidate shape, as a polars (Rust) regex: 1-5 words of letters, apostrophes, dots and hyphens.
NAME_SHAPE_RE = r"^\p{L}[\p{L}'’.-]*(?:,?[ ]+\p{L}[\p{L}'’.-]*){0,4}$"

#: Words that make a value a place, an organisation or a product rather than a person.
NOT_NAME_WORDS = frozenset(
    """
    aaf afb ag air aircraft airfield airlines airpark airport airports airstrip airways and ave avenue
    aviation bank base bay beach bv canyon capital center centre city co college community company corp
    corporation county creek district east executive falls field fld fort ft gmbh group harbor harbour
    heights heliport helicopter hills holdings hospital hotel inc industrie industries intercontinental intl
    international island islands isle lagoon lake landing lines llc ltd mem memorial motors mount mt muni
    municipal nas national new north of park plc point port puerto ranch rd regional rgnl rio river road sa
    saint san santa school seaplane south spa springs st state station street systems the town university
    valley village vineyard west
    """.split()  # noqa: SIM905 - a word block reads better than 120 quoted strings
)
_PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la", "le"}
)
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\.?")


@cache
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """The casefolded first names and last names of :data:`NAME_LOCALES`, loaded once from Faker.

    Raises:
        MissingExtra: Faker is not installed.

    Example:
        >>> first, last = name_lists()
        >>> "maria" in first, "schmidt" in last
        (True, True)
    """
    first: set[str] = set()
    last: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = import_module(f"faker.providers.person.{locale}").Provider
        except ImportError as exc:
            raise MissingExtra(
                "Recognising person names needs Faker's name lists (a Shipyard dependency): "
                "pip install 'faker>=24'"
            ) from exc
        for attribute, names in vars(provider).items():
            target = first if attribute.startswith("first_names") else last
            if attribute.startswith(("first_names", "last_names")) and isinstance(names, dict | tuple | list):
                target.update(name.casefold() for name in names if isinstance(name, str))
    return frozenset(first), frozenset(last)


def _words(value: str) -> list[str]:
    """Casefolded words of ``value``, turning ``Last, First`` into ``First Last``."""
    head, comma, tail = value.partition(",")
    ordered = f"{tail} {head}" if comma else value
    return [word.casefold() for word in _WORD_RE.findall(ordered)]


def is_person_name(value: str) -> bool:
    """Whether ``value`` reads as a person's name (see the module docstring for the rule).

    Example:
        >>> [is_person_name(v) for v in ("Ada Lovelace", "Curie, Marie", "Austin Bergstrom Intl", "BOEING")]
        [True, True, False, False]
    """
    words = _words(value)
    if not 1 <= len(words) <= 5 or any(word.rstrip(".") in NOT_NAME_WORDS for word in words):
        return False
    first, last = name_lists()
    if len(words) == 1:
        return words[0] in first or words[0] in last
    core = [word for word in words if not word.endswith(".") and len(word) > 1 and word not in _PARTICLES]
    unknown = [word for word in core if word not in first and word not in last]
    return any(word in first for word in core) and len(unknown) <= 1
