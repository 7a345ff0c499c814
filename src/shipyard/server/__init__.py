"""The Shipyard REST server (layer 5): a FastAPI application over one SQL store and one blob store.

``create_app(settings)`` builds the application (one router per capability under
``/api/v1``, OpenAPI at ``/docs``); ``serve(...)`` runs it under uvicorn, with
several worker processes if asked. The Python SDK talks to it through
``shipyard.store.rest.RestStore`` when the tracking URI is ``http(s)://``.
"""

from shipyard.server.app import app_from_env, create_app, serve

__all__ = ["app_from_env", "create_app", "serve"]
