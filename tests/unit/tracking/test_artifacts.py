"""Artifacts through the SDK: files, folders, bytes, dicts and figures, stored by content digest."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import blake3
import pytest

import shipyard as sy
from shipyard import Client
from shipyard.errors import ArtifactNotFound, DigestMismatch, InvalidInput, UnsafePath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    (root / "plots").mkdir(parents=True)
    (root / "model.bin").write_bytes(os.urandom(50_000))
    (root / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    (root / "notes.txt").write_text("hello")
    return root


def test_log_artifact_file_records_its_digest_and_size(client: Client, tree: Path) -> None:
    with client.start_run(log_environment=False) as run:
        (artifact,) = run.log_artifact(tree / "model.bin")
    data = (tree / "model.bin").read_bytes()
    assert (artifact.path, artifact.digest, artifact.size) == (
        "model.bin",
        blake3.blake3(data).hexdigest(),
        50_000,
    )
    assert client.list_artifacts(run.id) == [artifact]
    assert client.read_artifact(run.id, "model.bin") == data


def test_log_artifact_file_under_a_chosen_path(client: Client, tree: Path) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_artifact(tree / "notes.txt", "docs/readme.txt")
    assert [a.path for a in client.list_artifacts(run.id)] == ["docs/readme.txt"]


def test_log_artifact_directory_keeps_the_tree(client: Client, tree: Path) -> None:
    with client.start_run(log_environment=False) as run:
        logged = run.log_artifact(tree)
    expected = ["outputs/model.bin", "outputs/notes.txt", "outputs/plots/roc.csv"]
    assert sorted(a.path for a in logged) == expected
    assert [a.path for a in client.list_artifacts(run.id)] == expected
    assert [a.path for a in client.list_artifacts(run.id, "outputs/plots")] == ["outputs/plots/roc.csv"]


def test_download_artifacts_round_trips_every_byte(client: Client, tree: Path, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_artifact(tree, "out")
    dest = tmp_path / "download"
    root = client.download_artifacts(run.id, dest=dest)
    assert root == dest
    for src in tree.rglob("*"):
        if src.is_file():
            assert (dest / "out" / src.relative_to(tree)).read_bytes() == src.read_bytes()


def test_download_of_one_subfolder_returns_its_path(client: Client, tree: Path, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_artifact(tree, "out")
    got = client.download_artifacts(run.id, "out/plots", tmp_path / "d")
    assert got == tmp_path / "d" / "out" / "plots"
    assert [p.name for p in got.iterdir()] == ["roc.csv"]
    assert not (tmp_path / "d" / "out" / "model.bin").exists()


def test_download_of_a_missing_artifact_raises_artifact_not_found(client: Client, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run:
        pass
    with pytest.raises(ArtifactNotFound, match=run.id):
        client.download_artifacts(run.id, "nothing", tmp_path)
    with pytest.raises(ArtifactNotFound, match="'nothing'"):
        client.read_artifact(run.id, "nothing")


def test_read_artifact_verifies_the_bytes(client: Client, tree: Path, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run:
        (artifact,) = run.log_artifact(tree / "notes.txt")
    blob = tmp_path / "artifacts" / "blobs" / artifact.digest[:2] / artifact.digest[2:]
    blob.write_bytes(b"tampered")
    with pytest.raises(DigestMismatch, match=artifact.digest):
        client.read_artifact(run.id, "notes.txt")


def test_the_same_file_logged_by_two_runs_is_stored_once(client: Client, tree: Path, tmp_path: Path) -> None:
    for _ in range(2):
        with client.start_run(log_environment=False) as run:
            run.log_artifact(tree / "model.bin")
    assert len([p for p in (tmp_path / "artifacts" / "blobs").rglob("*") if p.is_file()]) == 1


def test_logging_a_missing_path_raises_invalid_input(client: Client, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run, pytest.raises(InvalidInput, match="does not exist"):
        run.log_artifact(tmp_path / "nope.bin")


@pytest.mark.parametrize("path", ["/abs/file", "../escape", "a/../../b"])
def test_unsafe_artifact_paths_are_refused(client: Client, tree: Path, path: str) -> None:
    with client.start_run(log_environment=False) as run:
        with pytest.raises(UnsafePath):
            run.log_artifact(tree / "notes.txt", path)
        with pytest.raises(UnsafePath):
            run.log_bytes(b"x", path)
    assert client.list_artifacts(run.id) == []


def test_log_text_and_log_bytes(client: Client) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_text("héllo", "notes/a.txt")
        run.log_bytes(b"\x00\x01", "raw.bin")
    assert client.read_artifact(run.id, "notes/a.txt") == "héllo".encode()
    assert client.read_artifact(run.id, "raw.bin") == b"\x00\x01"


def test_log_dict_writes_json(client: Client) -> None:
    data = {"classes": ["a", "b"], "threshold": 0.5, "nested": {"k": [1, 2]}}
    with client.start_run(log_environment=False) as run:
        run.log_dict(data, "config.json")
    assert json.loads(client.read_artifact(run.id, "config.json")) == data


def test_log_dict_keeps_nan_and_stringifies_unknown_types(client: Client, tmp_path: Path) -> None:
    with client.start_run(log_environment=False) as run:
        run.log_dict({"score": math.nan, "path": tmp_path}, "d.json")
    loaded = json.loads(client.read_artifact(run.id, "d.json"))
    assert math.isnan(loaded["score"])
    assert loaded["path"] == str(tmp_path)


def test_module_level_log_dict_and_log_artifact(fluent_client: Client, tree: Path) -> None:
    with sy.start_run(log_environment=False) as run:
        sy.log_dict({"a": 1}, "a.json")
        sy.log_artifact(str(tree / "notes.txt"))
    assert [a.path for a in fluent_client.list_artifacts(run.id)] == ["a.json", "notes.txt"]


def test_log_figure_matplotlib_writes_a_png(client: Client) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1, 2], [0, 1, 4])
    with client.start_run(log_environment=False) as run:
        artifact = run.log_figure(fig, "plots/curve")
    assert artifact.path == "plots/curve.png"
    assert client.read_artifact(run.id, "plots/curve.png").startswith(b"\x89PNG\r\n\x1a\n")


def test_log_figure_matplotlib_format_follows_the_extension(client: Client) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().bar(["a", "b"], [1, 2])
    with client.start_run(log_environment=False) as run:
        run.log_figure(fig, "bars.svg")
    assert b"<svg" in client.read_artifact(run.id, "bars.svg")[:2000]


def test_log_figure_plotly_writes_self_contained_html(client: Client) -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 4]))
    with client.start_run(log_environment=False) as run:
        artifact = run.log_figure(fig, "plots/curve")
    assert artifact.path == "plots/curve.html"
    html = client.read_artifact(run.id, "plots/curve.html").decode()
    assert html.lstrip().lower().startswith(("<html", "<!doctype html>"))
    assert html.rstrip().endswith("</html>")
    assert "plotly" in html.lower()
    assert '<script src="http' not in html  # plotly.js is inlined: the file works offline
    assert len(html) > 1_000_000


def test_log_figure_of_something_else_raises_invalid_input(client: Client) -> None:
    with (
        client.start_run(log_environment=False) as run,
        pytest.raises(InvalidInput, match="matplotlib or plotly"),
    ):
        run.log_figure({"not": "a figure"}, "f.png")
