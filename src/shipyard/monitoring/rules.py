"""Alert rules: a small condition language and the YAML spec that holds a deployment's rules.

A condition compares one monitored number with a threshold, optionally over consecutive windows::

    condition  := metric comparator number [ "for" INTEGER ( "window" | "windows" ) ]
    metric     := section "." NAME                 section: drift, performance, estimated, latency, traffic
                | "feature" "." FEATURE "." STAT   FEATURE: a name, or "a quoted name" (dots, spaces)
    comparator := ">" | ">=" | "<" | "<=" | "==" | "!="
    number     := an integer or decimal, optionally signed, optionally with an exponent

It is read by a regular-expression tokenizer and a recursive-descent parser over that grammar (never
``eval``). A rule spec (YAML, a mapping or a file) is read with the shared strict reader::

    deployment: churn
    rules:
      - name: drift-high
        when: drift.share > 0.3
        actions: [record, {webhook: {url: "https://hooks.example/alerts"}}]
      - name: auc-low
        when: performance.roc_auc < 0.80 for 2 windows
        actions: [{retrain: {pipeline: "churn.flows:train", params: {months: 3}}}]

See ``docs/monitoring.md`` (Alerts) for every metric name.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from shipyard.entities import MonitorReport
from shipyard.errors import InvalidInput
from shipyard.specs import StrictModel, parse_spec

__all__ = [
    "AlertRule",
    "AlertRules",
    "Condition",
    "RecordAction",
    "RetrainAction",
    "WebhookAction",
    "parse_condition",
    "parse_rules",
]

SECTIONS = ("drift", "performance", "estimated", "latency", "traffic")
KIND_OF = {
    "drift": "drift",
    "feature": "drift",
    "performance": "performance",
    "estimated": "estimated",
    "latency": "traffic",
    "traffic": "traffic",
}
NAMES: dict[str, tuple[str, ...] | None] = {  # None: any metric name the report carries
    "drift": ("share", "drifted_features", "domain_auc", "drifted"),
    "performance": None,
    "estimated": None,
    "latency": ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"),
    "traffic": ("requests", "error_rate", "server_error_rate"),
}
FEATURE_STATS = ("psi", "ks", "wasserstein", "js", "null_rate_cur", "new_share", "drifted")
_SUMMARY_KEY = {("drift", "share"): "share_drifted"}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<op>>=|<=|==|!=|>|<)
      | (?P<dot>\.)
      | (?P<quoted>"[^"]{1,255}")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_FIX = "write e.g. 'drift.share > 0.3' or 'performance.roc_auc < 0.8 for 2 windows' (docs/monitoring.md)"


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``section.name`` (or ``feature.<feature>.<name>``) ``op`` ``threshold``,
    holding over the last ``windows`` reports.

    Example:
        >>> c = parse_condition("latency.p99_ms > 50")
        >>> c.kind, c.key, c.holds(61.0)
        ('traffic', 'p99_ms', True)
    """

    section: str
    name: str
    op: str
    threshold: float
    windows: int = 1
    feature: str | None = None

    @property
    def kind(self) -> str:
        """The kind of monitor report the metric is read from (``drift``, ``traffic``, ...)."""
        return KIND_OF[self.section]

    @property
    def key(self) -> str:
        """The metric's key in a report's ``summary``."""
        if self.feature is not None:
            return f"feature.{self.feature}.{self.name}"
        return _SUMMARY_KEY.get((self.section, self.name), self.name)

    @property
    def metric(self) -> str:
        """The metric as written (``feature."a b".psi`` keeps its quotes only when needed)."""
        if self.feature is None:
            return f"{self.section}.{self.name}"
        plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.feature)
        return f"feature.{self.feature if plain else chr(34) + self.feature + chr(34)}.{self.name}"

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the condition (a missing or non-finite value never does)."""
        return value is not None and math.isfinite(value) and OPS[self.op](value, self.threshold)

    def value(self, report: MonitorReport) -> float | None:
        """The metric's value in a stored report: its summary, else (feature statistics) its body;
        ``traffic.requests`` is the traffic report's row count (its summary holds rates and latencies)."""
        found = report.summary.get(self.key)
        if found is None and (self.section, self.name) == ("traffic", "requests"):
            found = report.rows
        if found is None and self.feature is not None:
            for row in report.body.get("features", []) + report.body.get("predictions", []):
                if isinstance(row, dict) and row.get("feature") == self.feature:
                    raw = row.get(self.name)
                    found = float(raw) if isinstance(raw, int | float) else None
        return None if found is None else float(found)

    def __str__(self) -> str:
        suffix = f" for {self.windows} windows" if self.windows > 1 else ""
        return f"{self.metric} {self.op} {self.threshold:g}{suffix}"


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidInput(f"Alert condition {text!r}: cannot read {text[pos:].strip()[:20]!r}; {_FIX}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.pos = text, _tokens(text), 0

    def fail(self, wanted: str) -> InvalidInput:
        got = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "the end"
        return InvalidInput(f"Alert condition {self.text!r}: expected {wanted}, found {got!r}; {_FIX}")

    def take(self, kind: str, wanted: str, value: str | None = None) -> str:
        if self.pos < len(self.tokens):
            k, v = self.tokens[self.pos]
            if k == kind and (value is None or v == value):
                self.pos += 1
                return v
        raise self.fail(wanted)

    def condition(self) -> Condition:
        section, feature, name = self.metric()
        op = self.take("op", "a comparator (>, >=, <, <=, ==, !=)")
        number = self.take("number", "a number")
        windows = 1
        if self.pos < len(self.tokens):
            self.take("name", "'for N windows' or the end", "for")
            count = self.take("number", "a whole number of windows")
            if self.take("name", "'windows'") not in ("window", "windows"):
                self.pos -= 1
                raise self.fail("'windows'")
            if not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= 1000:
                raise InvalidInput(f"Alert condition {self.text!r}: 'for N windows' needs 1 <= N <= 1000")
            windows = int(count)
        if self.pos < len(self.tokens):
            raise self.fail("the end")
        return Condition(section, name, op, float(number), windows, feature)

    def metric(self) -> tuple[str, str | None, str]:
        section = self.take("name", f"a metric section ({', '.join((*SECTIONS, 'feature'))})")
        if section not in (*SECTIONS, "feature"):
            raise InvalidInput(
                f"Alert condition {self.text!r}: unknown section {section!r}; "
                f"use one of {', '.join((*SECTIONS, 'feature'))}"
            )
        self.take("dot", "'.' after the section")
        if section == "feature":
            if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "quoted":
                feature = self.take("quoted", "a feature name").strip('"')
            else:
                feature = self.take("name", 'a feature name (quote it: feature."a.b".psi)')
            self.take("dot", "'.' after the feature name")
            stat = self.take("name", f"a feature statistic ({', '.join(FEATURE_STATS)})")
            if stat not in FEATURE_STATS:
                raise InvalidInput(
                    f"Alert condition {self.text!r}: unknown feature statistic {stat!r}; "
                    f"use one of {', '.join(FEATURE_STATS)}"
                )
            return section, feature, stat
        name = self.take("name", f"a {section} metric name")
        allowed = NAMES[section]
        if allowed is not None and name not in allowed:
            raise InvalidInput(
                f"Alert condition {self.text!r}: unknown {section} metric {name!r}; "
                f"use one of {', '.join(allowed)}"
            )
        return section, None, name


def parse_condition(text: str) -> Condition:
    """Parse a condition of the rule language (see the module docstring for the grammar).

    Raises:
        InvalidInput: naming the condition, what was expected where, and an example to follow.

    Example:
        >>> str(parse_condition("performance.roc_auc < 0.80 for 2 windows"))
        'performance.roc_auc < 0.8 for 2 windows'
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"An alert condition must be non-empty text; {_FIX}")
    return _Parser(text.strip()).condition()


class RecordAction(StrictModel):
    """Store the alert (every rule does; listing it is allowed for clarity)."""

    type: Literal["record"] = "record"


class WebhookAction(StrictModel):
    """POST the alert as JSON to ``url`` when it opens and when it resolves, retrying with backoff."""

    type: Literal["webhook"] = "webhook"
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 0.5
    headers: dict[str, str] = Field(default_factory=dict)


class RetrainAction(StrictModel):
    """Run a training pipeline (``sy.trigger_pipeline(pipeline, params=...)``) when the alert opens."""

    type: Literal["retrain"] = "retrain"
    pipeline: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")]
    params: dict[str, Any] = Field(default_factory=dict)
    window_rows: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    """How many of the newest labelled predictions evaluate challenger and champion (hold them out of
    the retraining data, or the challenger is judged on rows it learned from)."""


Action = Annotated[RecordAction | WebhookAction | RetrainAction, Field(discriminator="type")]


class AlertRule(StrictModel):
    """One rule: a name, a condition (``when``), an optional variant, and its actions."""

    item_noun = "rule"

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    when: str
    variant: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    min_labelled: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Performance rules: windows with a smaller share of labelled predictions do not count yet."""
    actions: list[Action] = Field(default_factory=lambda: list[Action]([RecordAction()]))

    @field_validator("when")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse_condition(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _labelled_needs_performance(self) -> AlertRule:
        if self.min_labelled and self.condition.kind != "performance":
            raise ValueError(
                f"min_labelled applies to performance rules only; '{self.when}' reads "
                f"{self.condition.kind} reports (remove min_labelled, or use a performance.* metric)"
            )
        return self

    @field_validator("actions", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        """``record`` and ``{webhook: {...}}`` stand for ``{type: record}`` and ``{type: webhook, ...}``."""
        if not isinstance(value, list):
            return value
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                item = {"type": item}
            elif isinstance(item, Mapping) and len(item) == 1 and "type" not in item:
                ((kind, body),) = item.items()
                item = {"type": kind, **(body if isinstance(body, Mapping) else {})}
            out.append(item)
        return out

    @property
    def condition(self) -> Condition:
        return parse_condition(self.when)


class AlertRules(StrictModel):
    """A deployment's alert rules (``deployment`` optional: the pass's deployment when omitted)."""

    deployment: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    rules: list[AlertRule]

    @model_validator(mode="after")
    def _unique_names(self) -> AlertRules:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; {', '.join(twice)} appear more than once")
        return self


def parse_rules(source: AlertRules | str | Path | Mapping[str, Any]) -> AlertRules:
    """Read alert rules from YAML text, a ``.yaml`` file, a mapping or an :class:`AlertRules`.

    Example:
        >>> rules = parse_rules("rules: [{name: drift-high, when: drift.share > 0.3}]")
        >>> rules.rules[0].condition.key
        'share_drifted'
    """
    return parse_spec(source, AlertRules, noun="Alert rules", shape="a mapping with rules: [...]")
