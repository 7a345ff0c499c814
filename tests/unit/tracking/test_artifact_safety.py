"""Artifacts that could be logged but never downloaded are refused at logging; downloads are all or
nothing; folders never leak files through symbolic links; an unusable artifact root fails at Client()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.config import load_settings
from shipyard.errors import ConfigError, DigestMismatch, InvalidInput, UnsafePath


def new_run(client: Client) -> str:
    with client.start_run("safety", system_metrics=False, log_environment=False) as run:
        pass
    return run.id


@pytest.mark.parametrize(
    "path",
    ["a" * 256, "models/" + "é" * 128 + ".bin", "x/" * 600 + "y"],
    ids=["256-byte-name", "256-utf8-bytes-folder", "path-over-1024"],
)
def test_names_no_file_system_could_download_are_refused_at_logging(client: Client, path: str) -> None:
    run_id = new_run(client)
    with pytest.raises(UnsafePath, match="255|1024"):
        client.log_bytes(run_id, b"x", path)
    assert client.list_artifacts(run_id) == []
    client.log_bytes(run_id, b"x", "a" * 255)  # the longest name file systems allow is fine


@pytest.mark.parametrize(("first", "second"), [("m", "m/n"), ("m/n", "m"), ("a/b/c", "a/b")])
def test_a_run_never_holds_a_file_and_a_folder_of_the_same_name(
    client: Client, first: str, second: str
) -> None:
    run_id = new_run(client)
    client.log_bytes(run_id, b"1", first)
    with pytest.raises(UnsafePath, match="cannot hold both"):
        client.log_bytes(run_id, b"2", second)
    assert [a.path for a in client.list_artifacts(run_id)] == [first]
    client.log_bytes(run_id, b"3", first)  # logging the same path again overwrites it
    client.log_bytes(run_id, b"4", f"{first}-sibling/x")  # a name that only starts alike is fine


def test_a_download_that_fails_midway_leaves_nothing_behind(client: Client, tmp_path: Path) -> None:
    run_id = new_run(client)
    client.log_bytes(run_id, b"good", "model/a.bin")
    bad = client.log_bytes(run_id, b"soon corrupt", "model/b.bin")
    blob = tmp_path / "artifacts" / "blobs" / bad.digest[:2] / bad.digest[2:]
    blob.write_bytes(b"tampered")
    dest = tmp_path / "out"
    with pytest.raises(DigestMismatch):
        client.download_artifacts(run_id, "model", dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_a_download_to_an_unusable_destination_is_a_clear_error(client: Client, tmp_path: Path) -> None:
    run_id = new_run(client)
    client.log_bytes(run_id, b"x", "model/a.bin")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidInput, match=f"Cannot download the artifacts of run '{run_id}' to {blocker}"):
        client.download_artifacts(run_id, "", blocker)


def test_a_download_over_an_earlier_one_replaces_its_files(client: Client, tmp_path: Path) -> None:
    run_id = new_run(client)
    client.log_bytes(run_id, b"v1", "model/a.bin")
    client.download_artifacts(run_id, "", tmp_path / "out")
    client.log_bytes(run_id, b"v2", "model/a.bin")
    client.log_bytes(run_id, b"new", "model/b.bin")
    assert client.download_artifacts(run_id, "model", tmp_path / "out") == tmp_path / "out" / "model"
    assert (tmp_path / "out/model/a.bin").read_bytes() == b"v2"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model"]  # no staging folder left


def test_a_folder_with_a_link_out_of_it_is_refused_and_nothing_is_logged(
    client: Client, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not publish")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "leak.txt").symlink_to(secret)
    run_id = new_run(client)
    with pytest.raises(UnsafePath, match="outside the folder"):
        client.log_artifact(run_id, folder)
    (folder / "leak.txt").unlink()
    os.symlink(tmp_path, folder / "up")  # a folder link out of it
    with pytest.raises(UnsafePath, match="outside the folder"):
        client.log_artifact(run_id, folder)
    assert client.list_artifacts(run_id) == []


def test_links_inside_the_folder_are_logged_and_broken_ones_refused(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(b"w")
    (folder / "alias.bin").symlink_to(folder / "sub" / "weights.bin")
    (folder / "again").symlink_to(folder / "sub")  # not descended: its files are logged once
    run_id = new_run(client)
    logged = client.log_artifact(run_id, folder)
    assert [a.path for a in logged] == ["model/alias.bin", "model/sub/weights.bin"]
    assert logged[0].digest == logged[1].digest
    (folder / "gone.bin").symlink_to(folder / "missing.bin")
    with pytest.raises(UnsafePath, match="broken symbolic link"):
        client.log_artifact(run_id, folder)


@pytest.mark.parametrize("kind", ["a file", "below a file"])
def test_an_unusable_artifact_root_fails_at_client_creation_naming_it(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    root = blocker if kind == "a file" else blocker / "artifacts"
    settings = load_settings(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_uri=str(root))
    with pytest.raises(ConfigError, match=f"artifact store '{root}' cannot be used"):
        Client(settings=settings)
