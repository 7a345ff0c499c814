"""The team deployment of ``deploy/compose.yaml``, on this machine: every part real, on loopback.

- PostgreSQL (a fresh database of this module's own) holds the metadata;
- an S3-compatible object store (moto's server mode on a free loopback port) holds every artifact, in one
  bucket, reached through s3fs with the endpoint from ``AWS_ENDPOINT_URL``, as in the compose file;
- ``shipyard server --workers 2 --auth`` serves the REST API over both; its first start bootstraps user
  ``admin`` with the token in ``SHIPYARD_ADMIN_TOKEN``;
- ``shipyard serve models:/NAME@champion`` is the model server, reading the same database and bucket.

The admin creates the users (``shipyard users add NAME --role ROLE``) and one token each
(``shipyard tokens create``) through the CLI against the live server; every user then acts through the
SDK over HTTP with its token (``SHIPYARD_TOKEN``) only. A scientist logs runs and registers a model, an
approver approves, the scientist promotes, the model server answers; a viewer's writes are refused
(403). Every byte logged round-trips through the bucket (checked in the bucket itself) and nothing lands
on a local disk.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
import yaml
from server_process import child_env, free_port

from pg_helpers import pg_database
from polling_helpers import wait_until
from shipyard import Client
from shipyard.config import load_settings
from shipyard.errors import PermissionDenied
from shipyard.monitoring.query import query_predictions
from shipyard.registry import core, governance
from shipyard.serving.predlog import read_prediction_log

# One worker runs the whole module (make test: --dist loadgroup): its deployment is started once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("team-deployment")]

if not os.environ.get("CI"):  # under CI the dev extras are installed: a missing one fails, never skips
    for _needed in ("boto3", "moto.server", "s3fs"):
        pytest.importorskip(
            _needed, reason="the team deployment test needs the dev extras (moto[server], s3fs)"
        )
import boto3  # noqa: E402

BUCKET = "shipyard-artifacts"
PREFIX = "team"  # SHIPYARD_ARTIFACT_URI = s3://BUCKET/PREFIX, as in deploy/compose.yaml
MODEL = "team-flights"
ADMIN_TOKEN = "sy_" + "team-deployment-admin-token-0123456789abcdef"  # SHIPYARD_ADMIN_TOKEN
_CLI = "from shipyard.cli.main import main; main()"
# moto accepts any credentials; these are what an S3 client needs to sign its requests.
_AWS = {
    "AWS_ACCESS_KEY_ID": "shipyard-test",
    "AWS_SECRET_ACCESS_KEY": "shipyard-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe a cloud metadata endpoint: loopback only
}


# -- processes -----------------------------------------------------------------------------------------


class Process:
    """A child in its own process group, its output in a log file; ``ready`` polled with a deadline."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(url, timeout=2).status_code == 200
            return False

        try:
            wait_until(ready, lambda: f"{self.name} to answer {url}\n{self.log.read_text()}", timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class ObjectStore:
    endpoint: str

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def key(self, digest: str) -> str:
        return f"{PREFIX}/blobs/{digest[:2]}/{digest[2:]}"

    def blob(self, digest: str) -> bytes:
        """A blob's bytes read from the bucket itself (not through Shipyard)."""
        return bytes(self.s3().get_object(Bucket=BUCKET, Key=self.key(digest))["Body"].read())


@dataclass
class Team:
    root: Path
    pg_uri: str
    artifact_uri: str
    objects: ObjectStore
    server_url: str
    server: Process
    moto: Process  # its log has one line per S3 request
    service_env: dict[str, str]  # what the compose file gives the shipyard containers

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """PostgreSQL + moto S3 + ``shipyard server --workers 2``, torn down (database dropped) at the end."""
    root = tmp_path_factory.mktemp("team")
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as mp:
        for key, value in _AWS.items():
            mp.setenv(key, value)  # this process reads the bucket too (boto3 and s3fs)
        port = free_port()
        moto = Process(
            "moto",
            [
                sys.executable,
                "-c",
                "from moto.server import main; main()",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            {**os.environ, **_AWS},
            root,
        )
        stack.callback(moto.stop)
        endpoint = f"http://127.0.0.1:{port}"
        moto.wait_ready(f"{endpoint}/moto-api/", timeout=30)
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        objects = ObjectStore(endpoint)
        create_bucket_as_compose_does({**_AWS, "AWS_ENDPOINT_URL": endpoint})
        assert BUCKET in [b["Name"] for b in objects.s3().list_buckets()["Buckets"]]

        pg_uri = stack.enter_context(pg_database())
        service_env = {
            **child_env(root / "server-home"),
            **_AWS,
            "AWS_ENDPOINT_URL": endpoint,  # botocore, hence s3fs, reads it: no fsspec config file needed
            "SHIPYARD_TRACKING_URI": pg_uri,
            "SHIPYARD_ARTIFACT_URI": f"s3://{BUCKET}/{PREFIX}",
        }
        server_port = free_port()
        server = Process(
            "server",
            [sys.executable, "-c", _CLI, "server", "--host", "127.0.0.1", "--port", str(server_port)]
            + ["--workers", "2", "--auth", "--log-level", "warning"],
            {**service_env, "SHIPYARD_ADMIN_TOKEN": ADMIN_TOKEN},  # the first start's admin token
            root,
        )
        stack.callback(server.stop)
        url = f"http://127.0.0.1:{server_port}"
        server.wait_ready(f"{url}/health")
        yield Team(root, pg_uri, f"s3://{BUCKET}/{PREFIX}", objects, url, server, moto, service_env)


def create_bucket_as_compose_does(env: dict[str, str]) -> None:
    """Run deploy/compose.yaml's ``create-bucket`` service command (s3fs, endpoint from the environment)."""
    compose = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "compose.yaml").read_text())
    service = compose["services"]["create-bucket"]
    assert service["entrypoint"] == ["python", "-c"]
    for _ in range(2):  # the second start finds the bucket there
        subprocess.run(
            [sys.executable, "-c", *service["command"]],
            env={**os.environ, **env, "BUCKET": BUCKET},
            check=True,
            timeout=60,
        )


# -- users ---------------------------------------------------------------------------------------------


@dataclass
class User:
    """One person of the team, acting only through the SDK over HTTP with their token.

    No ``SHIPYARD_USER``: the server takes the actor from the token.
    """

    name: str
    role: str
    home: Path
    server_url: str
    token: str

    def env(self) -> dict[str, str]:
        return {
            "SHIPYARD_TRACKING_URI": self.server_url,
            "SHIPYARD_HOME": str(self.home),
            "SHIPYARD_TOKEN": self.token,
            "SHIPYARD_CREDENTIALS_FILE": str(self.home / "absent-credentials.toml"),
            "SHIPYARD_CONFIG": str(self.home / "absent.toml"),
            "SHIPYARD_SYSTEM_METRICS": "false",
            "SHIPYARD_FLUSH_INTERVAL": "0.05",
        }

    def client(self, **overrides: str) -> Client:
        return Client(settings=load_settings(env={**self.env(), **overrides}))


def shipyard_cli(team: Team, token: str, *args: str) -> str:
    """``shipyard ARGS`` against the live server with ``token``; its standard output."""
    env = {**child_env(team.root / "cli-home"), "SHIPYARD_TRACKING_URI": team.server_url}
    done = subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        env={**env, "SHIPYARD_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"shipyard {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def users(team: Team) -> dict[str, User]:
    """The team: the bootstrapped admin (policies, gc), a scientist, an approver and a viewer, created
    by the admin through the CLI against the live server, each with a token of its own."""
    made = {"admin": User("admin", "admin", team.root / "home-admin", team.server_url, ADMIN_TOKEN)}
    for name, role in (("sam", "scientist"), ("ada", "approver"), ("vic", "viewer")):
        shipyard_cli(team, ADMIN_TOKEN, "users", "add", name, "--role", role)
        created = json.loads(
            shipyard_cli(team, ADMIN_TOKEN, "tokens", "create", "--user", name, "--name", "team", "--json")
        )
        assert created["record"]["user"] == name and created["token"].startswith("sy_")
        made[role] = User(name, role, team.root / f"home-{name}", team.server_url, created["token"])
    for user in made.values():
        user.home.mkdir()
    listed = {
        u["name"]: u["roles"] for u in json.loads(shipyard_cli(team, ADMIN_TOKEN, "users", "ls", "--json"))
    }
    assert listed == {"admin": ["admin"], "sam": ["scientist"], "ada": ["approver"], "vic": ["viewer"]}
    return made


@pytest.fixture(scope="module")
def clients(users: dict[str, User]) -> Iterator[dict[str, Client]]:
    opened = {role: user.client() for role, user in users.items()}
    yield opened
    for client in opened.values():
        client.close()


# -- the scenario --------------------------------------------------------------------------------------


def blake3_of(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


def flights(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"dep_delay": rng.normal(10, 20, n).round(1), "distance": rng.integers(100, 3000, n)})


def test_two_workers_on_postgresql_and_the_bucket(team: Team) -> None:
    children = psutil.Process(team.server.proc.pid).children(recursive=True)
    workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]  # uvicorn's worker processes
    assert len(workers) == 2, [p.cmdline() for p in children]
    assert httpx.get(f"{team.server_url}/api/v1/info", timeout=5).status_code == 401  # auth is on
    info = httpx.get(f"{team.server_url}/api/v1/info", headers=team.admin(), timeout=5).json()
    assert info["artifact_uri"] == team.artifact_uri
    assert info["tracking_uri"].startswith("postgresql+psycopg://")


def test_scientist_logs_and_registers_approver_approves_scientist_promotes_and_the_model_serves(
    team: Team, users: dict[str, User], clients: dict[str, Client], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    sam, vic, root = clients["scientist"], clients["viewer"], clients["admin"]
    # The files the scientist logs: text, random binary over s3fs's 50 MiB block (a multipart upload to
    # the bucket), a nested folder.
    rng = np.random.default_rng(13)
    files = tmp_path / "files"
    (files / "report" / "plots").mkdir(parents=True)
    (files / "notes.txt").write_text("trained on flights, team deployment\n")
    (files / "weights.bin").write_bytes(rng.bytes(51 * 1024 * 1024 + 17))
    (files / "report" / "summary.json").write_text('{"auc": 0.9}')
    (files / "report" / "plots" / "roc.png").write_bytes(rng.bytes(4096))
    logged = {p.relative_to(files).as_posix(): p.read_bytes() for p in files.rglob("*") if p.is_file()}

    frame = flights(400, seed=1)
    target = (frame["dep_delay"] > 15).astype(int)
    model = LogisticRegression().fit(frame, target)
    run_ids = []
    for c in (0.1, 1.0):
        with sam.start_run(experiment="team-flights", params={"C": c}, log_environment=False) as run:
            for step in range(50):
                run.log_metrics({"loss": 1.0 / (step + 1), "c": c}, step=step)
            run.log_artifact(files / "notes.txt")
            run.log_artifact(files / "weights.bin")
            run.log_artifact(files / "report", "report")
            core.log_model(model, "model", run=run, input_example=frame.head(5))
            run_ids.append(run.id)
    version = core.register_model(run_ids[-1], MODEL, client=sam).version

    # Metadata went through the server to PostgreSQL, every run by the scientist, with exact counts.
    found = sam.search_runs("team-flights", order_by="params.C asc")
    assert list(found["run_id"]) == run_ids
    assert len(sam.get_metric_history(run_ids[0], "loss")) == 50
    assert {sam.get_run(r).user for r in run_ids} == {"sam"}  # the token's user

    # Every artifact round-trips: read back through the server, and byte-identical in the bucket itself.
    for run_id in run_ids:
        artifacts = sam.list_artifacts(run_id)
        by_path = {a.path: a for a in artifacts}
        for path, data in logged.items():
            stored = by_path[path]  # a logged folder keeps its files' relative paths under its name
            assert sam.read_artifact(run_id, path) == data
            assert stored.digest == blake3.blake3(data).hexdigest() and stored.size == len(data)
            assert team.objects.blob(stored.digest) == data
        for artifact in artifacts:  # the model folder's files too
            assert blake3.blake3(team.objects.blob(artifact.digest)).hexdigest() == artifact.digest
        out = sam.download_artifacts(run_id, "", tmp_path / f"download-{run_id}")
        downloaded = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert {k: downloaded[k] for k in logged} == logged
    parts = [line for line in team.moto.log.read_text().splitlines() if "partNumber=2&" in line]
    assert parts, "the large file went up to the bucket in parts (a multipart upload)"
    mv = sam.store.get_model_version(MODEL, version)
    for file in mv.files:
        assert blake3.blake3(team.objects.blob(file.digest)).hexdigest() == file.digest

    # Governance: one approval from the approver role before any alias moves.
    # The admin's token carries the admin role from the store (no roles file).
    governance.set_promotion_policy(MODEL, {"approvals": {"required": 1}}, reason="four eyes", client=root)
    pending = governance.promote_model(MODEL, version, alias="champion", reason="first", client=sam)
    assert not pending.promoted
    with pytest.raises(PermissionDenied):  # the author approving their own model
        governance.approve_model(MODEL, version, reason="mine", client=sam)
    with pytest.raises(PermissionDenied, match="vic may not POST .* needs the 'approve' permission"):
        governance.approve_model(MODEL, version, reason="looks fine", client=vic)
    # The approver's client names the author as its local user: the token, not the name, decides.
    claiming_sam = users["approver"].client(SHIPYARD_USER="sam")
    try:
        approval = governance.approve_model(MODEL, version, reason="report read", client=claiming_sam)
    finally:
        claiming_sam.close()
    assert approval.actor == "ada"
    assert [e.actor for e in root.list_audit(action="model_version.approve")] == ["ada"]
    promoted = governance.promote_model(MODEL, version, alias="champion", reason="approved", client=sam)
    assert promoted.promoted and sam.store.get_registered_model(MODEL).aliases == {"champion": version}
    actions = [(e.actor, e.action) for e in root.list_audit(object_type="model_alias")]
    assert ("sam", "alias.set") in actions, actions

    # The model server reads the same database and bucket, and answers with the registered model.
    served = serve_model(team, tmp_path)
    try:
        rows = flights(20, seed=2)
        answer = predict(served, rows, "first-request")
        assert answer["model_version"] == str(version)
        assert answer["predictions"] == model.predict(rows).tolist()
        # Its prediction log is written to the bucket, not to the server's disk.
        log = f"{team.artifact_uri}/predictions-log"
        # Monitoring runs in another process and reads the bucket through s3fs, which caches listings:
        # each reader, alone in its loop, must see a request logged after the other one listed the log.
        seen = {"first-request"}
        wait_until(lambda: read_ids(log) == seen, "the first request in the log", timeout=30)
        for reader, request_id in ((queried_ids, "second-request"), (read_ids, "third-request")):
            assert (
                predict(served, rows.head(3), request_id)["predictions"]
                == model.predict(rows.head(3)).tolist()
            )
            seen = seen | {request_id}
            wait_until(
                lambda reader=reader, seen=seen: reader(log) == seen,
                lambda reader=reader, seen=seen: f"{reader.__name__}: {seen} in the log, not {reader(log)}",
                timeout=30,
            )
        assert prediction_rows(team) == 3  # the same, read with boto3: one row per request
    finally:
        served.process.stop()

    # Nothing landed on a local disk: no artifact folder, no spool, no blob file anywhere under our roots.
    assert not (team.root / "server-home" / "artifacts").exists()
    assert not (served.home / "artifacts").exists()
    for user in users.values():
        assert not (user.home / "spool").exists() or not any((user.home / "spool").rglob("*.jsonl"))
    digests = {a.digest[2:] for r in run_ids for a in sam.list_artifacts(r)}
    on_disk = [p for base in (team.root, served.home) for p in base.rglob("*") if p.name in digests]
    assert on_disk == []
    assert team.objects.keys(f"{PREFIX}/tmp/") == []  # every upload was committed under its digest


@dataclass
class Served:
    process: Process
    url: str
    home: Path


def serve_model(team: Team, tmp_path: Path) -> Served:
    home = tmp_path / "model-server-home"
    env = {**team.service_env, "SHIPYARD_HOME": str(home)}  # the compose file's model-server service
    port = free_port()
    process = Process(
        "model-server",
        [sys.executable, "-c", _CLI, "serve", f"models:/{MODEL}@champion", "--host", "127.0.0.1"]
        + ["--port", str(port), "--log-level", "warning"],
        env,
        tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    process.wait_ready(f"{url}/ready", timeout=90)
    return Served(process, url, home)


def predict(served: Served, rows: pd.DataFrame, request_id: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{served.url}/predict",
        json={"records": rows.to_dict(orient="records")},
        headers={"X-Request-ID": request_id},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def read_ids(root: str) -> set[str]:
    return set(read_prediction_log(root, deployment=MODEL)["request_id"])


def queried_ids(root: str) -> set[str]:
    return set(query_predictions(MODEL, root=root, columns=["request_id"]).collect()["request_id"])


def prediction_rows(team: Team) -> int:
    keys = [k for k in team.objects.keys(f"{PREFIX}/predictions-log/predictions/") if k.endswith(".parquet")]
    s3 = team.objects.s3()
    return sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())).num_rows for k in keys
    )


def test_a_viewer_cannot_approve_or_change_a_policy(team: Team, clients: dict[str, Client]) -> None:
    vic, sam = clients["viewer"], clients["scientist"]
    from sklearn.dummy import DummyClassifier

    frame = flights(10, seed=3)
    model = DummyClassifier().fit(frame, [0, 1] * 5)
    version = core.register_model(model, "viewer-probe", input_example=frame.head(2), client=sam).version
    with pytest.raises(PermissionDenied, match="vic may not POST .* needs the 'approve' permission"):
        governance.approve_model("viewer-probe", version, reason="ok", client=vic)
    with pytest.raises(PermissionDenied, match="vic may not PUT .* needs the 'admin' permission"):
        governance.set_promotion_policy("viewer-probe", {"approvals": {"required": 0}}, client=vic)
    assert governance.get_promotion_policy("viewer-probe", client=vic) is None
    assert sam.store.list_model_records("viewer-probe", kind="approval") == []


def test_gc_through_the_server_lists_the_bucket_and_keeps_what_is_referenced(
    team: Team, clients: dict[str, Client]
) -> None:
    with clients["scientist"].start_run(experiment="team-gc", log_environment=False) as run:
        kept = clients["scientist"].log_bytes(run.id, b"kept by gc", "kept.txt")
    before = team.objects.keys(f"{PREFIX}/blobs/")
    assert team.objects.key(kept.digest) in before
    report = clients["admin"].gc(grace_seconds=3600)  # lists blobs/ and tmp/ in the bucket
    assert report.blobs_deleted == 0 and report.temp_files_removed == 0
    assert report.blobs_kept == len(before)
    assert team.objects.keys(f"{PREFIX}/blobs/") == before


def test_a_viewer_cannot_log_a_run(clients: dict[str, Client]) -> None:
    exp = "team-viewer-refused"  # its own experiment: this test may run first, on any worker
    with clients["scientist"].start_run(experiment=exp, log_environment=False):
        pass
    before = len(clients["scientist"].search_runs(exp))
    with pytest.raises(PermissionDenied, match="vic may not POST .* needs the 'write' permission"):
        clients["viewer"].start_run(experiment=exp, log_environment=False).end()
    assert len(clients["scientist"].search_runs(exp)) == before == 1


# -- the S3 blob store across processes ----------------------------------------------------------------


def test_a_blob_another_process_wrote_is_seen_after_a_listing(team: Team) -> None:
    """Two workers' blob stores over s3fs: once one has listed a fan-out folder (gc does), it still sees
    a blob the other writes into that folder later (s3fs caches listings; the store must not trust them).
    """
    import fsspec

    from shipyard.artifacts.blobs import FsspecBlobStore

    first, second = FsspecBlobStore(team.artifact_uri), FsspecBlobStore(team.artifact_uri)
    second.fs = fsspec.filesystem("s3", skip_instance_cache=True)  # as in another process: its own cache
    digest, _ = first.put_bytes(b"listed first")
    sibling = next(  # other content whose blob lands in the same fan-out folder
        data
        for i in range(100_000)
        if blake3.blake3(data := f"sibling {i}".encode()).hexdigest()[:2] == digest[:2]
    )
    assert digest in dict(first.iter_digests())
    other, _ = second.put_bytes(sibling)
    assert first.exists(other) and first.get_bytes(other) == sibling
    assert other in dict(first.iter_digests()) and digest in dict(second.iter_digests())
    assert first.clean_tmp(older_than_s=0) == 0  # an object store has no empty tmp/ folder to list
    assert team.objects.blob(other) == sibling


def test_an_audit_checkpoint_another_process_wrote_is_read_after_a_listing(team: Team) -> None:
    """The same for audit checkpoints in the bucket: every worker writes them, any worker lists them."""
    import fsspec

    from shipyard.audit.anchor import Checkpoint, CheckpointLog

    url = f"{team.artifact_uri}/audit/test-checkpoints"
    first, second = CheckpointLog(url), CheckpointLog(url)
    second._fs = fsspec.filesystem("s3", skip_instance_cache=True)  # as in another process: its own cache
    first.write(Checkpoint(1, "ab" * 32, 1, 1_700_000_000_000))
    assert [c.seq for c in first.read_all()[0]] == [1]
    second.write(Checkpoint(2, "cd" * 32, 2, 1_700_000_000_001))
    assert [c.seq for c in first.read_all()[0]] == [1, 2]
