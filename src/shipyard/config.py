"""Settings: one typed list, read with precedence env (``SHIPYARD_*``) > ``shipyard.toml`` > defaults.

Settings are validated once and passed around as an object; nothing reads the
environment at import time. ``SETTINGS`` is the documented list (a test checks
that every setting appears in ``docs/configuration.md``).
"""

from __future__ import annotations

import getpass
import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import ConfigError

__all__ = [
    "DEFAULT_BODY_READ_TIMEOUT",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_STATEMENT_TIMEOUT",
    "SETTINGS",
    "Setting",
    "Settings",
    "credentials_path",
    "default_user",
    "load_settings",
    "redact_uri",
    "store_token",
    "stored_token",
]

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""64 MiB: the largest request body either server accepts unless ``max_request_bytes`` says otherwise."""
DEFAULT_STATEMENT_TIMEOUT = 30.0
"""Seconds one metadata-store query may run (``statement_timeout``); also for stores opened bare."""
DEFAULT_BODY_READ_TIMEOUT = 30.0
"""Seconds a server waits for the next part of a request body (``body_read_timeout``)."""


@dataclass(frozen=True)
class Setting:
    """One documented setting."""

    name: str
    type: type
    default: Any
    help: str
    secret: bool = False  # never shown (doctor prints "***"), not in repr(settings)

    @property
    def env_var(self) -> str:
        return f"SHIPYARD_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "tracking_uri",
        str,
        "",
        "Metadata store: sqlite:///path.db, postgresql+psycopg://..., or http(s)://host:port "
        "(a Shipyard server). Default: sqlite:///<home>/shipyard.db.",
    ),
    Setting(
        "artifact_uri",
        str,
        "",
        "Artifact store: a local folder or any fsspec URL. Default: <home>/artifacts.",
    ),
    Setting("home", str, ".shipyard", "Folder for the default store, artifacts and spool files."),
    Setting("user", str, "", "Actor recorded on every run. Default: the OS user."),
    Setting("flush_interval", float, 1.0, "Seconds between background flushes of logged data."),
    Setting(
        "defer_run_start",
        bool,
        True,
        "Through a server, send a run's start with its first flush, or with its end when it ends "
        "sooner (a short run is one request); the first run of an experiment starts at once.",
    ),
    Setting("buffer_size", int, 100_000, "Max buffered log records per run before backpressure."),
    Setting("system_metrics", bool, True, "Sample CPU %, RSS and times in the background."),
    Setting("system_metrics_interval", float, 5.0, "Seconds between system-metric samples."),
    Setting("http_timeout", float, 10.0, "Seconds before a request to a Shipyard server times out."),
    Setting(
        "run_heartbeat_timeout",
        float,
        300.0,
        "Seconds without a heartbeat (sent every timeout/5 s by a live run's process) after which a "
        "running run is marked killed; 0 never marks runs. For a server, its own value applies.",
    ),
    Setting(
        "max_request_bytes",
        int,
        DEFAULT_MAX_REQUEST_BYTES,
        "Largest request body the tracking server and the model server accept (bytes).",
    ),
    Setting(
        "statement_timeout",
        float,
        DEFAULT_STATEMENT_TIMEOUT,
        "Seconds one metadata-store query may run before it is cancelled (PostgreSQL "
        "statement_timeout; SQLite through a progress check); the caller gets store_unavailable "
        "(503) naming this setting. 0 never cancels.",
    ),
    Setting(
        "body_read_timeout",
        float,
        DEFAULT_BODY_READ_TIMEOUT,
        "Seconds the tracking server and the model server wait for the next part of a request "
        "body before answering 408 (a client that declares more bytes than it sends).",
    ),
    Setting(
        "unpickle_allowlist",
        str,
        "",
        "Extra names (comma-separated) a model's pickles and skops files may import: exact "
        "module.qualname, a module (its own classes and functions) or pkg.* (and submodules).",
    ),
    Setting(
        "roles_file",
        str,
        "",
        "YAML file mapping roles to users (e.g. approver: [alice, bob]) for promotion approvals.",
    ),
    Setting(
        "package_allowlist_file",
        str,
        "",
        "Organisation allowlist of Python packages (one name or name==version per line) "
        "checked by `shipyard models audit`.",
    ),
    Setting(
        "audit_key_file",
        str,
        "",
        "File holding the secret key (at least 16 bytes, e.g. `openssl rand -hex 32`) that signs "
        "audit checkpoints (HMAC-SHA256); keep it outside the database and the artifact store.",
    ),
    Setting(
        "audit_checkpoint_uri",
        str,
        "",
        "Folder or fsspec URL where the SQL store writes audit checkpoints after every audited "
        "change. Default: <artifact_uri>/audit/checkpoints.",
    ),
    Setting(
        "allow_remote_admin",
        bool,
        False,
        "Let the server answer admin requests (gc, purge, blob deletion, checkpoints) from "
        "non-loopback clients (shipyard server --allow-remote-admin). Off: loopback only.",
    ),
    Setting(
        "token",
        str,
        "",
        "API token a client sends to a Shipyard server (Authorization: Bearer). Default: the token "
        "`shipyard login` stored for that server in credentials_file.",
        secret=True,
    ),
    Setting(
        "credentials_file",
        str,
        "",
        "Where `shipyard login` keeps tokens per server (mode 0600). Default: "
        "$XDG_CONFIG_HOME/shipyard/credentials.toml (~/.config/shipyard/credentials.toml).",
    ),
    Setting(
        "auth",
        bool,
        False,
        "The tracking server authenticates every request (users, tokens, roles). `shipyard server` "
        "turns it on itself when it binds a non-loopback address.",
    ),
    Setting(
        "insecure",
        bool,
        False,
        "Let `shipyard server` bind a non-loopback address without authentication (warns on every start).",
    ),
    Setting(
        "admin_token",
        str,
        "",
        "Token of the admin user created on a server's first start with auth (for automated "
        "deployments; at least 32 characters). Unset: a token is generated and printed once.",
        secret=True,
    ),
    Setting(
        "admin_token_file",
        str,
        "",
        "File holding the bootstrap admin token (read if it exists; else the generated token is "
        "written there with mode 0600 instead of being printed).",
    ),
    Setting(
        "cors_origins",
        str,
        "",
        "Comma-separated origins the tracking server allows cross-origin requests from. Empty: CORS off.",
    ),
    Setting(
        "price_cpu_hour",
        float,
        0.04,
        "Price of one CPU-core hour (currency units, e.g. USD) for the cost metrics of pipeline steps.",
    ),
    Setting("price_gpu_hour", float, 2.5, "Price of one GPU hour for the cost metrics of pipeline steps."),
    Setting("price_kwh", float, 0.3, "Price of one kWh of energy for the cost metrics of pipeline steps."),
    Setting(
        "watts_per_core",
        float,
        10.0,
        "Power drawn per busy CPU core (W) when RAPL counters are unreadable: energy = CPU seconds × this.",
    ),
)

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _coerce(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        if setting.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _BOOL_TRUE:
                return True
            if text in _BOOL_FALSE:
                return False
            raise ValueError(raw)
        # int(1.5) == 1 and int(True) == 1 would hide a typo in shipyard.toml
        if setting.type is int and (
            isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer())
        ):
            raise ValueError(raw)
        value = setting.type(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting '{setting.name}' from {origin} must be a {setting.type.__name__}, got {raw!r}"
        ) from None
    if setting.type is float and not math.isfinite(value):
        # NaN makes the flusher spin (wait(nan) returns at once); inf overflows wait().
        raise ConfigError(f"Setting '{setting.name}' from {origin} must be a finite number, got {raw!r}")
    if setting.type in (int, float) and value < 0:
        raise ConfigError(f"Setting '{setting.name}' from {origin} must be >= 0, got {raw!r}")
    return value


def default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"


_DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`; override with :meth:`replace`.

    Defaults come from :data:`SETTINGS` (the one documented list), never repeated here.
    """

    tracking_uri: str = _DEFAULTS["tracking_uri"]
    artifact_uri: str = _DEFAULTS["artifact_uri"]
    home: str = _DEFAULTS["home"]
    user: str = _DEFAULTS["user"]
    flush_interval: float = _DEFAULTS["flush_interval"]
    defer_run_start: bool = _DEFAULTS["defer_run_start"]
    buffer_size: int = _DEFAULTS["buffer_size"]
    system_metrics: bool = _DEFAULTS["system_metrics"]
    system_metrics_interval: float = _DEFAULTS["system_metrics_interval"]
    http_timeout: float = _DEFAULTS["http_timeout"]
    run_heartbeat_timeout: float = _DEFAULTS["run_heartbeat_timeout"]
    max_request_bytes: int = _DEFAULTS["max_request_bytes"]
    statement_timeout: float = _DEFAULTS["statement_timeout"]
    body_read_timeout: float = _DEFAULTS["body_read_timeout"]
    unpickle_allowlist: str = _DEFAULTS["unpickle_allowlist"]
    roles_file: str = _DEFAULTS["roles_file"]
    package_allowlist_file: str = _DEFAULTS["package_allowlist_file"]
    audit_key_file: str = _DEFAULTS["audit_key_file"]
    audit_checkpoint_uri: str = _DEFAULTS["audit_checkpoint_uri"]
    allow_remote_admin: bool = _DEFAULTS["allow_remote_admin"]
    token: str = field(default=_DEFAULTS["token"], repr=False)
    credentials_file: str = _DEFAULTS["credentials_file"]
    auth: bool = _DEFAULTS["auth"]
    insecure: bool = _DEFAULTS["insecure"]
    admin_token: str = field(default=_DEFAULTS["admin_token"], repr=False)
    admin_token_file: str = _DEFAULTS["admin_token_file"]
    cors_origins: str = _DEFAULTS["cors_origins"]
    price_cpu_hour: float = _DEFAULTS["price_cpu_hour"]
    price_gpu_hour: float = _DEFAULTS["price_gpu_hour"]
    price_kwh: float = _DEFAULTS["price_kwh"]
    watts_per_core: float = _DEFAULTS["watts_per_core"]
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        home = Path(self.home)
        if not self.tracking_uri:
            object.__setattr__(self, "tracking_uri", f"sqlite:///{home / 'shipyard.db'}")
        if not self.artifact_uri:
            object.__setattr__(self, "artifact_uri", str(home / "artifacts"))
        if not self.user:
            object.__setattr__(self, "user", default_user())
        if self.buffer_size < 1:
            raise ConfigError(f"Setting 'buffer_size' must be >= 1, got {self.buffer_size}")

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def spool_dir(self) -> Path:
        return Path(self.home) / "spool"


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: explicit overrides > ``SHIPYARD_*`` env > ``shipyard.toml`` > defaults.

    Example:
        >>> load_settings(env={"SHIPYARD_FLUSH_INTERVAL": "0.5"}).flush_interval
        0.5
    """
    env = dict(os.environ) if env is None else env
    path = Path(config_file or env.get("SHIPYARD_CONFIG", "shipyard.toml"))
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Cannot parse {path}: {exc}") from exc
        file_values = data.get("shipyard", data)
    known = {s.name: s for s in SETTINGS}
    for key in file_values:
        if key not in known:
            raise ConfigError(
                f"Unknown setting '{key}' in {path}; known settings: {', '.join(sorted(known))}"
            )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if s.name in overrides and overrides[s.name] is not None:
            values[s.name] = _coerce(s, overrides[s.name], "arguments")
            sources[s.name] = "argument"
        elif s.env_var in env:
            values[s.name] = _coerce(s, env[s.env_var], f"${s.env_var}")
            sources[s.name] = f"${s.env_var}"
        elif s.name in file_values:
            values[s.name] = _coerce(s, file_values[s.name], str(path))
            sources[s.name] = str(path)
        else:
            values[s.name] = s.default
            sources[s.name] = "default"
    unknown = set(overrides) - set(known)
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
    assert {f.name for f in fields(Settings)} - {"sources"} == set(known)
    if not values["token"] and str(values["tracking_uri"]).startswith(("http://", "https://")):
        stored = stored_token(values["tracking_uri"], credentials_path(values["credentials_file"], env))
        if stored:
            values["token"], sources["token"] = stored, "credentials file"
    return Settings(**values, sources=sources)


def credentials_path(configured: str = "", env: dict[str, str] | None = None) -> Path:
    """Where `shipyard login` keeps tokens: ``configured``, else the XDG config folder.

    Example:
        >>> credentials_path("/tmp/creds.toml")
        PosixPath('/tmp/creds.toml')
    """
    if configured:
        return Path(configured).expanduser()
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "shipyard" / "credentials.toml"


def _server_key(uri: str) -> str:
    return uri.rstrip("/")


def stored_token(server_uri: str, path: Path) -> str:
    """The token stored for ``server_uri`` in the credentials file at ``path`` ("" if none)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    entry = data.get("servers", {}).get(_server_key(server_uri), {})
    return str(entry.get("token", "")) if isinstance(entry, dict) else ""


def store_token(server_uri: str, token: str, path: Path) -> Path:
    """Keep ``token`` for ``server_uri`` in the credentials file (created with mode 0600; other
    servers' entries kept). Returns the path.

    Example:
        >>> store_token("http://ship:5000", "sy_x", Path("/tmp/doc-creds.toml")).stat().st_mode & 0o777
        384
    """
    try:
        data = tomllib.loads(path.read_text()) if path.is_file() else {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Cannot parse the credentials file {path}: {exc}") from exc
    servers = dict(data.get("servers", {}))
    servers[_server_key(server_uri)] = {"token": token}
    lines = []
    for uri, entry in sorted(servers.items()):
        lines.append(f"[servers.{_toml_string(uri)}]")
        lines.append(f"token = {_toml_string(str(entry.get('token', '')))}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (safe to show and log).

    Example:
        >>> redact_uri("postgresql+psycopg://ship:secret@db:5432/shipyard")
        'postgresql+psycopg://ship:***@db:5432/shipyard'
    """
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if not password:
        return uri
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
