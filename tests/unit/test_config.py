"""Settings: precedence arguments > SHIPYARD_* env > shipyard.toml > defaults, validated once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shipyard.config import DEFAULT_MAX_REQUEST_BYTES, SETTINGS, Settings, load_settings
from shipyard.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shipyard.toml"
    path.write_text(text)
    return path


def test_defaults_apply_when_nothing_is_configured(tmp_path: Path) -> None:
    s = load_settings(config_file=tmp_path / "missing.toml", env={})
    assert s.flush_interval == 1.0
    assert s.buffer_size == 100_000
    assert s.system_metrics is True
    assert s.sources["flush_interval"] == "default"


def test_default_store_locations_live_under_home(tmp_path: Path) -> None:
    home = tmp_path / "h"
    s = load_settings(config_file=tmp_path / "missing.toml", env={"SHIPYARD_HOME": str(home)})
    assert s.tracking_uri == f"sqlite:///{home / 'shipyard.db'}"
    assert s.artifact_uri == str(home / "artifacts")
    assert s.spool_dir == home / "spool"
    assert s.user  # the OS user (or 'unknown'), never empty


def test_toml_overrides_defaults(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nflush_interval = 2.5\nbuffer_size = 10\n")
    s = load_settings(config_file=cfg, env={})
    assert (s.flush_interval, s.buffer_size) == (2.5, 10)
    assert s.sources["flush_interval"] == str(cfg)


def test_toml_without_a_shipyard_table_is_read_at_top_level(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "system_metrics = false\n")
    assert load_settings(config_file=cfg, env={}).system_metrics is False


def test_env_overrides_toml(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nflush_interval = 2.5\nbuffer_size = 10\n")
    s = load_settings(config_file=cfg, env={"SHIPYARD_FLUSH_INTERVAL": "0.25"})
    assert s.flush_interval == 0.25
    assert s.buffer_size == 10  # not in env: the file still applies
    assert s.sources["flush_interval"] == "$SHIPYARD_FLUSH_INTERVAL"


def test_arguments_override_env(tmp_path: Path) -> None:
    s = load_settings(config_file=tmp_path / "missing.toml", env={"SHIPYARD_BUFFER_SIZE": "7"}, buffer_size=9)
    assert s.buffer_size == 9
    assert s.sources["buffer_size"] == "argument"


def test_config_file_location_comes_from_shipyard_config_env(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nuser = 'ada'\n")
    assert load_settings(env={"SHIPYARD_CONFIG": str(cfg)}).user == "ada"


def test_process_environment_is_read_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HTTP_TIMEOUT", "3")
    assert load_settings().http_timeout == 3.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("off", False), ("no", False)],
)
def test_boolean_env_values_are_parsed(text: str, expected: bool) -> None:
    assert load_settings(env={"SHIPYARD_SYSTEM_METRICS": text}).system_metrics is expected


@pytest.mark.parametrize(
    ("var", "value", "setting"),
    [
        ("SHIPYARD_FLUSH_INTERVAL", "soon", "flush_interval"),
        ("SHIPYARD_BUFFER_SIZE", "1.5", "buffer_size"),
        ("SHIPYARD_BUFFER_SIZE", "-3", "buffer_size"),
        ("SHIPYARD_SYSTEM_METRICS", "maybe", "system_metrics"),
        ("SHIPYARD_HTTP_TIMEOUT", "-1", "http_timeout"),
        ("SHIPYARD_BUFFER_SIZE", "0", "buffer_size"),
    ],
)
def test_bad_env_value_raises_config_error_naming_the_setting(var: str, value: str, setting: str) -> None:
    with pytest.raises(ConfigError, match=f"'{setting}'") as info:
        load_settings(env={var: value})
    assert info.value.http_status == 500


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_float_settings_are_rejected(value: str) -> None:
    """A NaN flush interval would make the background flusher's wait() blow up much later."""
    with pytest.raises(ConfigError, match="'flush_interval'"):
        load_settings(env={"SHIPYARD_FLUSH_INTERVAL": value})


def test_bad_toml_value_names_the_setting_and_the_file(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nsystem_metrics = 'perhaps'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=cfg, env={})
    assert "'system_metrics'" in str(info.value)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize("value", ["1.5", "true"])
def test_toml_value_of_the_wrong_type_for_an_integer_setting_is_rejected(tmp_path: Path, value: str) -> None:
    cfg = _toml(tmp_path, f"[shipyard]\nbuffer_size = {value}\n")
    with pytest.raises(ConfigError, match="'buffer_size'"):
        load_settings(config_file=cfg, env={})


def test_whole_float_in_toml_is_accepted_for_an_integer_setting(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nbuffer_size = 64.0\n")
    assert load_settings(config_file=cfg, env={}).buffer_size == 64


def test_unknown_toml_key_raises_config_error_listing_known_settings(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard]\nflush_intervall = 1\n")
    with pytest.raises(ConfigError, match="flush_intervall") as info:
        load_settings(config_file=cfg, env={})
    assert "flush_interval" in str(info.value).split("known settings:")[1]


def test_unparseable_toml_raises_config_error(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, "[shipyard\n")
    with pytest.raises(ConfigError, match="Cannot parse"):
        load_settings(config_file=cfg, env={})


def test_unknown_argument_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_settings(env={}, colour="blue")


def test_every_setting_is_a_typed_documented_field_of_settings() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "sources"}
    assert [s.name for s in SETTINGS] == list(fields)
    for s in SETTINGS:
        assert s.help.strip(), s.name
        assert s.env_var == f"SHIPYARD_{s.name.upper()}"
        assert fields[s.name].default == s.default, s.name
        assert isinstance(s.default, s.type), s.name


def test_every_setting_appears_in_the_configuration_docs() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if s.name not in text or s.env_var not in text]
    assert not missing


def test_settings_are_not_read_from_the_environment_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing the env after import takes effect at the next load: nothing was frozen at import."""
    monkeypatch.setenv("SHIPYARD_BUFFER_SIZE", "11")
    first = load_settings()
    monkeypatch.setenv("SHIPYARD_BUFFER_SIZE", "12")
    assert (first.buffer_size, load_settings().buffer_size) == (11, 12)


def test_replace_returns_a_new_settings_object(tmp_path: Path) -> None:
    s = load_settings(config_file=tmp_path / "missing.toml", env={})
    t = s.replace(flush_interval=0.1)
    assert (s.flush_interval, t.flush_interval) == (1.0, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.flush_interval = 3.0  # type: ignore[misc]


def test_settings_defaults_are_the_documented_list_and_nothing_else() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "sources"}
    assert list(fields) == [s.name for s in SETTINGS]
    for setting in SETTINGS:
        assert fields[setting.name].default == setting.default, setting.name
        assert fields[setting.name].type == setting.type.__name__, setting.name


def test_the_body_limit_default_is_64_mib_in_one_place() -> None:
    assert DEFAULT_MAX_REQUEST_BYTES == 64 * 1024 * 1024
    assert Settings().max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    assert next(s for s in SETTINGS if s.name == "max_request_bytes").default == DEFAULT_MAX_REQUEST_BYTES
