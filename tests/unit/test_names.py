"""One rule for names, keys and stored text (shipyard.names), applied by the SDK at call time."""

from __future__ import annotations

import pytest

from shipyard import Client
from shipyard.bounds import INT32_MAX, check_int
from shipyard.errors import InvalidInput
from shipyard.names import check_key, check_name, check_text


def test_the_rules() -> None:
    assert check_name("Dataset name", "flights-2024_v.2") == "flights-2024_v.2"
    assert check_name("Experiment name", "team@proj", at_sign=True) == "team@proj"
    assert check_key("Metric key", "val/auc") == "val/auc"
    assert check_text("Param 'x'", 3) == 3  # only strings are checked
    for bad in ("a@v1", "", " ", "a\u200fb", "a\x00", "x" * 256, None):
        with pytest.raises(InvalidInput):
            check_name("Dataset name", bad)
    assert check_int("version", 7, 1, INT32_MAX) == 7
    for bad_int in (True, 1.0, 0, 2**31, "7"):
        with pytest.raises(InvalidInput, match="version"):
            check_int("version", bad_int, 1, INT32_MAX)


def test_a_long_bad_value_is_shown_cut_short() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_text("Param 'blob'", "x" * 10_000_000 + "\x00")
    assert len(str(caught.value)) < 300 and "10000001 characters" in str(caught.value)


def test_the_sdk_refuses_nul_when_called_not_in_the_background_flush(client: Client) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        client.start_run("e", params={"lr": "0.1\x00"})
    with pytest.raises(InvalidInput, match="referenced"):
        client.start_run("bad\nname")
    with client.start_run("e") as run:
        for call in (
            lambda: run.log_param("lr", "\x00"),
            lambda: run.set_tag("team", "a\x00"),
            lambda: run.log_metric("loss\x00", 1.0),
        ):
            with pytest.raises(InvalidInput, match="NUL"):
                call()
        run.log_param("lr", "0.1")
    assert client.get_run(run.id).params == {"lr": "0.1"}
