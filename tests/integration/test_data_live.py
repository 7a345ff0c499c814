"""Dataset versions, contracts, profiles and diffs through a real ``shipyard server``: the SDK unchanged."""

from __future__ import annotations

from typing import Any

import pandas as pd

import shipyard as sy
from shipyard import Client


def test_the_data_sdk_works_unchanged_through_a_live_server(shared_server: Any) -> None:
    client = Client(tracking_uri=shared_server.url)
    try:
        jan = pd.DataFrame({"delay": [float(i % 30) for i in range(2_000)], "carrier": ["UA", "AA"] * 1_000})
        jul = jan.assign(delay=jan["delay"] + 40.0)
        contract = sy.infer_contract(jan, name="live")
        v1 = sy.log_dataset(jan, name="live-flights", contract=contract, client=client)
        v2 = sy.log_dataset(jul, name="live-flights", client=client)
        assert (v1.version, v2.version) == (1, 2)
        assert sy.log_dataset(jan, name="live-flights", client=client) == v1  # same data, same version
        pd.testing.assert_frame_equal(sy.load_dataset("live-flights@v1", client=client), jan)
        assert sy.load_profile(v1, client=client).rows == 2_000
        diff = sy.diff_datasets(v1, v2, client=client).to_frame().set_index("column")
        assert diff.loc["delay", "verdict"] == "major shift"
        with client.start_run(experiment="live-data", log_environment=False) as run:
            run.use_dataset("live-flights@v2", role="test")
        assert [u.dataset.ref for u in client.list_run_datasets(run.id)] == ["live-flights@v2"]
    finally:
        client.close()
