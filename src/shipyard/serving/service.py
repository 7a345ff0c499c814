"""One loaded model version as the server uses it: check a request's frame, predict, describe itself.

``check_request`` runs on the event loop before a request joins a batch (so a bad request fails alone,
with the signature's 422): plain JSON columns are checked without pandas when they fit as they are, and
``batch_frame`` builds one typed frame for the batch in the worker thread; anything else goes through
``check`` (pandas, ``Signature.check``). ``predict_checked`` runs in the worker thread on the batch's frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.registry.flavors import LoadedModel, read_input_example
from shipyard.serving.batching import PredictorOutput
from shipyard.serving.columns import TypedColumns, batch_frame, check_columns
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

    def check_request(
        self,
        columns: dict[str, list[Any]] | None,
        rows: int,
        frame: Callable[[], pd.DataFrame],
        *,
        proba: bool,
        ignore: Sequence[str] | bool = (),
    ) -> pd.DataFrame | TypedColumns:
        """A request's rows checked for this model: its plain ``columns`` typed in plain Python when every
        value fits the signature as it is (:func:`~shipyard.serving.columns.check_columns`), else
        :meth:`check` of ``frame()`` — which converts, or refuses with the signature's message.
        ``ignore``: columns the model does not take that may be sent anyway (True: all of them)."""
        signature = self.model.signature
        if columns is not None and signature is not None:
            self._check_proba(proba)
            typed = check_columns(columns, rows, signature, ignore=ignore)
            if typed is not None:
                return replace(typed, fallback=lambda: self.check(frame(), proba=False))
        return self.check(frame(), proba=proba)

    def batch_frame(self, parts: Sequence[TypedColumns]) -> pd.DataFrame:
        """One frame of checked requests' rows, typed from the signature (the batcher's worker thread)."""
        assert self.model.signature is not None, "typed columns come only from a model with a signature"
        return batch_frame(self.model.signature, parts)

    def check(self, frame: pd.DataFrame, *, proba: bool) -> pd.DataFrame:
        """The frame the model will see (signature-checked), or ``SignatureMismatch`` / ``InvalidInput``."""
        self._check_proba(proba)
        frame = parse_json_datetimes(frame, self.model.signature)
        signature = self.model.signature
        return signature.check(frame) if signature is not None else frame

    def _check_proba(self, proba: bool) -> None:
        if proba and not self.model.has_proba:
            raise InvalidInput(
                f"Model {self.label} (task {self.model.metadata.task}) has no class "
                'probabilities; drop ?proba=true / "proba": true from the request'
            )

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
