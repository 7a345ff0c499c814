"""How to serve a deployment: :class:`ServeOptions`, one frozen object for the app and for uvicorn.

``create_deployment_app(spec, options)`` reads the app's part (which stored deployment to follow, trust,
overrides, labels, body limit, when to load); ``serve_deployment(spec, options)`` reads uvicorn's part too
(host, port, workers, log level, access log). The CLI's ``shipyard serve`` defaults are these defaults, so
the SDK and the CLI behave the same when given nothing.

This module imports nothing heavy: the CLI reads the defaults from it without loading FastAPI.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["HTTP_PARSERS", "LOG_LEVELS", "LOOPS", "ServeOptions", "merge_legacy_options"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
"""The log levels uvicorn knows (``--log-level``)."""
LOOPS = ("auto", "uvloop", "asyncio")
"""Event loops (``--loop``): ``auto`` is uvloop (a core dependency), else asyncio's."""
HTTP_PARSERS = ("auto", "httptools", "h11")
"""HTTP/1.1 implementations (``--http``): ``auto`` is httptools (a core dependency), else h11."""


@dataclass(frozen=True)
class ServeOptions:
    """How a deployment is served: the model server's behaviour, then uvicorn's.

    Attributes:
        stored: The name of the stored deployment being served: the server follows its new versions.
        trust: Load models whose pickles reference modules outside the unpickle allowlist.
        overrides: Settings applied over every spec served, the stored ones included
            (``{"batching": {"max_batch_size": 128}}``; what ``--batch-size`` and the like set).
        labels: How answers name folder variants (``{"/app/model": "models:/churn@prod"}``); default:
            the folder.
        max_request_bytes: Larger request bodies are refused with 413 before they are parsed; None:
            the ``max_request_bytes`` setting (64 MiB unless configured).
        load_on_startup: Load the models before taking traffic (default); False: in the background,
            with ``GET /ready`` at 503 meanwhile.
        auth: ``/predict``, ``/explain`` and ``/feedback`` need a token (scope ``read`` or ``serve``)
            checked against the metadata store. Admin routes need a ``serve`` token either way (only
            loopback callers may skip it, and only while ``auth`` is off).
        host: Interface uvicorn binds (``serve_deployment`` only).
        port: TCP port (``serve_deployment`` only).
        workers: Worker processes; each loads its own copy of the models (``serve_deployment`` only).
        log_level: One of :data:`LOG_LEVELS` (``serve_deployment`` only).
        access_log: uvicorn's one line per request; off by default, as in ``shipyard serve``, because
            it costs throughput (``serve_deployment`` only).
        loop: One of :data:`LOOPS` (``serve_deployment`` only).
        http: One of :data:`HTTP_PARSERS` (``serve_deployment`` only).

    Raises:
        InvalidInput: a port, worker count, body limit or log level that cannot work, naming the value.

    Example:
        >>> options = ServeOptions(port=9000, overrides={"batching": {"enabled": False}})
        >>> options.access_log, options.workers
        (False, 1)
        >>> ServeOptions(log_level="loud")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        shipyard.errors.InvalidInput: Serve option log_level='loud' is not a log level; use one of ...
    """

    stored: str | None = None
    trust: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    max_request_bytes: int | None = None
    load_on_startup: bool = True
    auth: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False
    loop: str = "auto"
    http: str = "auto"

    def __post_init__(self) -> None:
        for name, value, known, what in (
            ("log_level", self.log_level, LOG_LEVELS, "a log level"),
            ("loop", self.loop, LOOPS, "an event loop"),
            ("http", self.http, HTTP_PARSERS, "an HTTP implementation"),
        ):
            if value not in known:
                raise InvalidInput(
                    f"Serve option {name}={value!r} is not {what}; use one of {', '.join(known)}"
                )
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"Serve option port={self.port} is not a TCP port; use 0-65535 (0: any free)")
        if self.workers < 1:
            raise InvalidInput(f"Serve option workers={self.workers} must be at least 1")
        if self.max_request_bytes is not None and self.max_request_bytes < 1:
            raise InvalidInput(
                f"Serve option max_request_bytes={self.max_request_bytes} must be positive "
                "(or None for the max_request_bytes setting)"
            )

    def to_json(self) -> dict[str, Any]:
        """The options as plain JSON values (what a ``--workers`` server hands its worker processes).

        Example:
            >>> ServeOptions.from_json(ServeOptions(stored="churn").to_json()).stored
            'churn'
        """
        data = dataclasses.asdict(self)
        data["overrides"] = dict(self.overrides)
        data["labels"] = dict(self.labels)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServeOptions:
        """Options from :meth:`to_json`'s output; unknown keys are an ``InvalidInput`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInput(
                f"Unknown serve option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**data)


def merge_legacy_options(
    options: ServeOptions | None, legacy: Mapping[str, Any], *, caller: str
) -> ServeOptions:
    """``options`` with the keywords of the old signature folded in (each a ``DeprecationWarning``).

    ``create_deployment_app`` and ``serve_deployment`` took these settings as keywords until 0.x; they
    still do for one release.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     merge_legacy_options(None, {"port": 9000}, caller="serve_deployment").port
        9000
    """
    options = options or ServeOptions()
    if not legacy:
        return options
    names = {f.name for f in dataclasses.fields(ServeOptions)}
    unknown = sorted(set(legacy) - names)
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword argument(s): {', '.join(unknown)}")
    warnings.warn(
        f"{caller}({', '.join(f'{k}=' for k in sorted(legacy))}) is deprecated; pass "
        f"options=ServeOptions({', '.join(f'{k}=...' for k in sorted(legacy))}) instead "
        "(from shipyard.serving import ServeOptions)",
        DeprecationWarning,
        stacklevel=3,
    )
    return dataclasses.replace(options, **legacy)
