"""Alert rules: the condition grammar, the strict spec, one firing alert per rule (re-fire, resolve,
audit) on SQLite, PostgreSQL and through the REST server, 'for N windows', and the webhook and retrain
actions against a real local HTTP receiver and a real pipeline."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.entities import MonitorReport
from shipyard.errors import InvalidInput
from shipyard.monitoring.alerts import evaluate_rules
from shipyard.monitoring.rules import parse_condition, parse_rules
from shipyard.monitoring.webhook import post_alert
from shipyard.store import Store, open_store
from shipyard.tracking import Client

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from server_harness import Borrowed, SyncASGITransport, make_settings  # noqa: E402

T0 = 1_764_226_800_000


# -- grammar ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "key", "op", "threshold", "windows"),
    [
        ("drift.share > 0.3", "drift", "share_drifted", ">", 0.3, 1),
        ("performance.roc_auc < 0.80 for 2 windows", "performance", "roc_auc", "<", 0.8, 2),
        ("estimated.roc_auc < 0.78", "estimated", "roc_auc", "<", 0.78, 1),
        ("latency.p99_ms > 50", "traffic", "p99_ms", ">", 50.0, 1),
        ("traffic.error_rate > 0.01", "traffic", "error_rate", ">", 0.01, 1),
        ("feature.X.psi > 0.25", "drift", "feature.X.psi", ">", 0.25, 1),
        ('feature."dep.delay".ks>=1e-1 for 1 window', "drift", "feature.dep.delay.ks", ">=", 0.1, 1),
        ("  drift.domain_auc != -0.5  ", "drift", "domain_auc", "!=", -0.5, 1),
    ],
)
def test_valid_conditions_parse(
    text: str, kind: str, key: str, op: str, threshold: float, windows: int
) -> None:
    cond = parse_condition(text)
    assert (cond.kind, cond.key, cond.op, cond.threshold, cond.windows) == (kind, key, op, threshold, windows)
    assert parse_condition(str(cond)) == cond  # the printed form reads back the same


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drift.share >", "expected a number, found 'the end'"),
        ("drift.shares > 0.3", "unknown drift metric 'shares'; use one of share"),
        ("memory.rss > 1", "unknown section 'memory'"),
        ("__import__('os').system('x')", "cannot read"),
        ("drift.share > 0.3 for 2", "expected 'windows'"),
        ("drift.share > 0.3 for 2 days", "expected 'windows', found 'days'"),
        ("drift.share > 0.3 for 0 windows", "1 <= N <= 1000"),
        ("drift.share 0.3", "expected a comparator"),
        ("drift.share => 0.3", "cannot read"),
        ("drift.share > 0.3 and x", "expected 'for N windows' or the end"),
        ("feature.X.mean > 1", "unknown feature statistic 'mean'"),
        ("", "non-empty"),
    ],
)
def test_invalid_conditions_name_the_problem_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="Alert condition|alert condition") as info:
        parse_condition(text)
    assert message in str(info.value)


def test_a_bad_rule_in_a_spec_is_named_with_its_field() -> None:
    with pytest.raises(
        InvalidInput, match=r"rule 'auc-low' field 'when'.*unknown performance|rule 'auc-low'"
    ):
        parse_rules("rules: [{name: ok, when: drift.share > 0.3}, {name: auc-low, when: performance.auc <}]")
    with pytest.raises(InvalidInput, match="more than once"):
        parse_rules("rules: [{name: a, when: drift.share > 0.3}, {name: a, when: drift.share > 0.4}]")
    with pytest.raises(InvalidInput, match="colour"):
        parse_rules("rules: [{name: a, when: drift.share > 0.3, colour: red}]")
    with pytest.raises(InvalidInput, match="url"):
        parse_rules("rules: [{name: a, when: drift.share > 0.3, actions: [{webhook: {url: ftp://x}}]}]")


def test_actions_have_short_forms_and_record_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "deployment: delays\n"
        "rules:\n"
        "  - {name: plain, when: drift.share > 0.3}\n"
        "  - name: all\n"
        "    when: latency.p99_ms > 50\n"
        "    actions: [record, {webhook: {url: 'http://127.0.0.1:1/h', retries: 1}},"
        " {retrain: {pipeline: 'a.b:c', params: {months: 2}}}]\n"
    )
    rules = parse_rules(path)
    assert [type(a).__name__ for a in rules.rules[0].actions] == ["RecordAction"]
    assert [a.type for a in rules.rules[1].actions] == ["record", "webhook", "retrain"]
    assert rules.rules[1].actions[2].params == {"months": 2}  # type: ignore[union-attr]


# -- storage --------------------------------------------------------------------------------------
def check_alert_lifecycle(store: Store) -> None:
    first = store.fire_alert("delays", None, "drift-high", "drift.share > 0.3", {"values": [0.4]}, "ann")
    again = store.fire_alert("delays", None, "drift-high", "drift.share > 0.3", {"values": [0.5]}, "ann")
    other = store.fire_alert("delays", "canary", "drift-high", "drift.share > 0.3", {"values": [0.6]}, "ann")
    assert (first.state, first.windows) == ("firing", 1)
    assert again.id == first.id and again.windows == 2 and again.evidence == {"values": [0.5]}
    assert again.last_seen_at >= first.last_seen_at and other.id != first.id
    assert {a.id for a in store.list_alerts("delays", state="firing")} == {first.id, other.id}
    resolved = store.resolve_alert("delays", None, "drift-high", {"values": [0.1]}, "ann")
    assert resolved is not None and resolved.state == "resolved" and resolved.resolved_at is not None
    assert store.resolve_alert("delays", None, "drift-high", {}, "ann") is None  # nothing fires now
    reopened = store.fire_alert("delays", None, "drift-high", "drift.share > 0.3", {"values": [0.7]}, "ann")
    assert reopened.id not in (first.id, other.id) and reopened.windows == 1
    with_actions = store.record_alert_actions(reopened.id, {"retrain": {"run_id": "abc"}})
    assert store.get_alert(reopened.id).actions == with_actions.actions == {"retrain": {"run_id": "abc"}}
    assert [a.state for a in store.list_alerts("delays", state="resolved")] == ["resolved"]
    audited = [(e.action, e.object_id) for e in store.list_audit(object_type="alert")]
    assert audited == [
        ("alert.open", str(first.id)),
        ("alert.open", str(other.id)),
        ("alert.resolve", str(first.id)),
        ("alert.open", str(reopened.id)),
    ]
    with pytest.raises(InvalidInput, match="state"):
        store.list_alerts(state="open")
    with pytest.raises(InvalidInput, match="rule name"):
        store.fire_alert("delays", None, "bad name!", "drift.share > 0.3", {}, "ann")


def test_alerts_are_deduplicated_resolved_and_audited_in_sql_stores(store_uri: str) -> None:
    store = open_store(store_uri)
    try:
        check_alert_lifecycle(store)
    finally:
        store.close()


@pytest.fixture
def rest_store(tmp_path: Path) -> Iterator[Store]:
    from shipyard.server import create_app
    from shipyard.store.rest import RestStore

    transport = SyncASGITransport(create_app(make_settings(tmp_path / "server")))
    store = RestStore("http://testserver", make_settings(tmp_path / "client"), transport=Borrowed(transport))
    yield store
    store.close()
    transport.close()


def test_alerts_are_deduplicated_resolved_and_audited_through_the_rest_server(rest_store: Store) -> None:
    check_alert_lifecycle(rest_store)


# -- evaluation -------------------------------------------------------------------------------------
def save_performance(client: Client, auc: float | None, i: int) -> None:
    summary: dict[str, float | None] = {"labelled_share": 1.0, "roc_auc": auc}
    client.store.save_monitor_report(
        MonitorReport("delays", "performance", "main", T0 + i, T0 + i + 1, 100, "", summary, {})
    )


def test_for_n_windows_fires_only_after_n_consecutive_windows_and_resolves(client: Client) -> None:
    rules = parse_rules("rules: [{name: auc-low, when: performance.roc_auc < 0.80 for 2 windows}]")
    outcomes = []
    for i, auc in enumerate([0.75, 0.74, 0.70, None, 0.90, 0.70]):
        save_performance(client, auc, i)
        (outcome,) = evaluate_rules(rules, "delays", ["performance"], client=client)
        outcomes.append(outcome.outcome)
    # one low window is not enough; a window without the metric gives no verdict; a good one resolves
    assert outcomes == ["ok", "opened", "firing", "no data", "resolved", "ok"]
    (alert,) = client.store.list_alerts("delays")
    assert alert.state == "resolved" and alert.windows == 2
    assert evaluate_rules(rules, "delays", ["drift"], client=client)[0].outcome == "no data"


# -- actions --------------------------------------------------------------------------------------
class Receiver:
    """A real HTTP server on 127.0.0.1 that records every JSON body and fails the first ``failures``."""

    def __init__(self, failures: int = 0, stall_s: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failures = failures
        self.stall = threading.Event()  # set by the test when it is done: a stalled answer then goes out
        self.stall_s = stall_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.bodies.append({"body": body, "token": self.headers.get("X-Token")})
                failing = len(receiver.bodies) <= receiver.failures
                if failing and receiver.stall_s:  # the first answers are slower than the client waits
                    receiver.stall.wait(receiver.stall_s)
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stall.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def test_webhook_retries_with_backoff_until_the_receiver_answers(receiver: Receiver) -> None:
    waits: list[float] = []
    result = post_alert(
        receiver.url, {"rule": "x"}, retries=3, backoff_s=0.01, headers={"X-Token": "t"}, sleep=waits.append
    )
    assert result["ok"] and result["status"] == 200 and result["attempts"] == 3
    assert waits == [0.01, 0.02]  # exponential backoff before each retry
    assert [b["body"] for b in receiver.bodies] == [{"rule": "x"}] * 3
    assert {b["token"] for b in receiver.bodies} == {"t"}


def test_webhook_gives_up_after_its_retries_and_reports_it() -> None:
    always = Receiver(failures=100)
    try:
        result = post_alert(always.url, {"rule": "x"}, retries=2, backoff_s=0.0)
    finally:
        always.close()
    assert not result["ok"] and result["attempts"] == 3 and result["error"] == "HTTP 503"
    assert len(always.bodies) == 3
    closed = post_alert(always.url, {"rule": "x"}, retries=1, backoff_s=0.0, timeout_s=1.0)
    assert not closed["ok"] and closed["status"] is None and "ConnectError" in closed["error"]


def test_webhook_times_out_a_slow_receiver_and_retries() -> None:
    slow = Receiver(failures=1, stall_s=30.0)
    try:
        result = post_alert(slow.url, {"rule": "x"}, retries=2, backoff_s=0.0, timeout_s=0.3)
    finally:
        slow.close()
    assert result["ok"] and result["attempts"] == 2 and len(slow.bodies) == 2


def test_a_firing_rule_posts_to_its_webhook_when_it_opens_and_resolves(
    client: Client, receiver: Receiver
) -> None:
    spec = {
        "rules": [
            {
                "name": "auc-low",
                "when": "performance.roc_auc < 0.8",
                "actions": [{"webhook": {"url": receiver.url, "retries": 3, "backoff_s": 0.01}}],
            }
        ]
    }
    rules = parse_rules(spec)
    save_performance(client, 0.7, 0)
    (opened,) = evaluate_rules(rules, "delays", ["performance"], client=client)
    save_performance(client, 0.71, 1)
    (still,) = evaluate_rules(rules, "delays", ["performance"], client=client)  # no second notification
    save_performance(client, 0.9, 2)
    (resolved,) = evaluate_rules(rules, "delays", ["performance"], client=client)
    assert (opened.outcome, still.outcome, resolved.outcome) == ("opened", "firing", "resolved")
    events = [(b["body"]["event"], b["body"]["alert"]["rule"]) for b in receiver.bodies]
    assert events == [("opened", "auc-low")] * 3 + [("resolved", "auc-low")]  # two 503s, then delivered
    assert receiver.bodies[2]["body"]["alert"]["evidence"]["values"] == [0.7]
    alert = client.store.get_alert(opened.alert.id if opened.alert else 0)
    assert alert.actions["webhook_opened"][0]["attempts"] == 3
    assert alert.actions["webhook_resolved"][0]["ok"] is True


def test_a_retrain_action_triggers_the_pipeline_and_keeps_its_run_id(client: Client) -> None:
    rules = parse_rules(
        {
            "rules": [
                {
                    "name": "drifted",
                    "when": "drift.share > 0.3",
                    "actions": [
                        "record",
                        {"retrain": {"pipeline": "retrain_steps:retrain", "params": {"months": 3}}},
                    ],
                }
            ]
        }
    )
    summary: dict[str, float | None] = {"share_drifted": 0.5}
    client.store.save_monitor_report(MonitorReport("delays", "drift", None, T0, T0 + 1, 10, "", summary, {}))
    (outcome,) = evaluate_rules(rules, "delays", ["drift"], client=client)
    assert outcome.outcome == "opened" and outcome.alert is not None
    retrain = client.store.get_alert(outcome.alert.id).actions["retrain"]
    run = client.store.get_run(retrain["run_id"])
    assert run.status == "finished" and retrain["params"] == {"months": 3}
    # a re-fire does not retrain again
    (again,) = evaluate_rules(rules, "delays", ["drift"], client=client)
    assert (
        again.outcome == "firing" and client.store.get_alert(outcome.alert.id).actions["retrain"] == retrain
    )
