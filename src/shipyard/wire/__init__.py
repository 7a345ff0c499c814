"""What travels between Shipyard processes over HTTP, defined once for the tracking server, the model
server and the REST client: the JSON error shape (:mod:`.shape`), the float codec for NaN and infinities
(:mod:`.floats`), the FastAPI exception handlers (:mod:`.handlers`), the request-body limit
(:mod:`.limits`) and the supervisor that gives each worker process of either server a listening socket
of its own (:mod:`.workers`). It sits below the stores (the REST client decodes errors with it) and
above the ground modules. This ``__init__`` exports only the cheap, FastAPI-free names; ``handlers``,
``limits`` and ``workers`` import FastAPI, Starlette or uvicorn and are imported by the servers only
(``import shipyard`` imports none of this).
"""

from __future__ import annotations

from shipyard.wire.floats import NON_FINITE, decode_float, encode_float
from shipyard.wire.shape import error_body, error_from_response

__all__ = ["NON_FINITE", "decode_float", "encode_float", "error_body", "error_from_response"]
