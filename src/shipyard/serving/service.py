"""One loaded model version as the server uses it: check a request's frame, predict, describe itself.

``check`` runs on the event loop before a request joins a batch (so a bad request fails alone, with the
signature's 422); ``predict_checked`` runs in a worker thread on a (possibly concatenated) checked frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.registry.flavors import LoadedModel, read_input_example
from shipyard.serving.batching import PredictorOutput
from shipyard.serving.payload import jsonable, parse_json_datetimes
from shipyard.version import __version__

__all__ = ["ModelService"]


@dataclass(eq=False)
class ModelService:
    """One loaded model and the names answers give it.

    Example:
        >>> service = ModelService(model, ref="models:/churn/3", version="3")  # doctest: +SKIP
        >>> service.predict(frame, proba=False)["predictions"]  # doctest: +SKIP
        [0, 1]
    """

    model: LoadedModel
    ref: str
    version: str
    _background: list[pd.DataFrame | None] = field(default_factory=list, init=False, repr=False)

    @property
    def label(self) -> str:
        """How answers and logs name the model (its ref, else its flavor)."""
        return self.ref or self.model.flavor

    def check(self, frame: pd.DataFrame, *, proba: bool) -> pd.DataFrame:
        """The frame the model will see (signature-checked), or ``SignatureMismatch`` / ``InvalidInput``."""
        if proba and not self.model.has_proba:
            raise InvalidInput(
                f"Model {self.label} (task {self.model.metadata.task}) has no class "
                'probabilities; drop ?proba=true / "proba": true from the request'
            )
        frame = parse_json_datetimes(frame, self.model.signature)
        signature = self.model.signature
        return signature.check(frame) if signature is not None else frame

    def predict_checked(self, frame: pd.DataFrame, *, proba: bool) -> PredictorOutput:
        """Predict on a checked frame (worker thread); model errors on odd values become ``InvalidInput``."""
        try:
            probabilities = self.model.predict_proba(frame) if proba else None
            return PredictorOutput(self.model.predict(frame), probabilities)
        except ShipyardError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # The signature passed, so this is data the model cannot handle (e.g. an unseen category).
            raise InvalidInput(
                f"Model {self.label} could not predict on this input "
                f"({type(exc).__name__}: {exc}); check the values against GET /info",
                details={"exception": type(exc).__name__},
            ) from exc

    def predict(self, frame: pd.DataFrame, *, proba: bool) -> dict[str, Any]:
        """Check and predict in one go (no batching): the JSON answer's prediction fields.

        Example:
            >>> service.predict(frame, proba=True)["probabilities"]  # doctest: +SKIP
            [[0.9, 0.1]]
        """
        output = self.predict_checked(self.check(frame, proba=proba), proba=proba)
        return self.answer(output)

    def answer(self, output: PredictorOutput) -> dict[str, Any]:
        """JSON fields for one request's outputs: predictions, then probabilities and classes if asked."""
        answer: dict[str, Any] = {"predictions": jsonable(output.predictions)}
        if output.probabilities is not None:
            answer["probabilities"] = jsonable(output.probabilities)
            answer["classes"] = self.model.classes
        return answer

    def background(self) -> pd.DataFrame | None:
        """The model's input example, checked (read once): the baseline ``/explain`` compares rows with."""
        if not self._background:
            example = read_input_example(self.model.path)
            try:
                checked = self.check(example, proba=False) if example is not None else None
            except InvalidInput:  # an example that no longer fits the signature: the request is the baseline
                checked = None
            self._background.append(checked)
        return self._background[0]

    def info(self) -> dict[str, Any]:
        """What ``GET /info`` says about the model: names, flavor, task, signature and requirements."""
        meta = self.model.metadata
        signature = self.model.signature
        return {
            "model": self.ref,
            "version": self.version,
            "flavor": self.model.flavor,
            "task": meta.task,
            "classes": meta.classes,
            "signature": signature.to_dict() if signature is not None else None,
            "requirements": list(meta.requirements),
            "python": meta.python,
            "shipyard": {"model": meta.shipyard, "server": __version__},
        }
