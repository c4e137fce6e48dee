"""The model catalog (``model-catalog.json``): what is known about every Bedrock model a stack may
name - its id forms, its Bedrock lifecycle (Active, Legacy, EOL) with dates, and its list price.

Settings validation, the policy pack and ``make preflight`` all read it through this module, so
they agree on what "Active" means on a given day. Standard library only: the policy pack imports
it from its own virtualenv.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).resolve().parent / "model-catalog.json"

ACTIVE, LEGACY, EOL = "Active", "Legacy", "EOL"
_STATES = (ACTIVE, LEGACY, EOL)


class CatalogError(ValueError):
    """The catalog file itself is malformed; the message names the entry."""


@dataclass(frozen=True)
class CatalogModel:
    """One model and every id a tier may call it by."""

    name: str
    provider: str
    foundation_model_id: str
    inference_profile_ids: tuple[str, ...]
    state: str
    legacy_on: date | None
    eol_on: date | None
    source: str
    #: On-demand list price in USD per 1,000 tokens, where and when it was read (None: unpriced,
    #: and then no stack may use the model).
    input_per_1k: float | None
    output_per_1k: float | None
    price_source: str | None = None
    price_read_on: date | None = None
    #: Whether Bedrock's CountTokens counts this model's input (``countTokensSource`` in the file).
    count_tokens: bool = False

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.foundation_model_id, *self.inference_profile_ids)

    def state_on(self, today: date) -> str:
        """The lifecycle state on ``today``: the recorded state, moved on by the recorded dates
        (a model is EOL from its EOL date on, whatever the file last said)."""
        if self.eol_on is not None and today >= self.eol_on:
            return EOL
        if self.legacy_on is not None and today >= self.legacy_on:
            return LEGACY
        return self.state

    def describe(self, today: date) -> str:
        state = self.state_on(today)
        if state == EOL:
            return f"{self.name} reached end of life on Bedrock on {self.eol_on} ({self.source})"
        if state == LEGACY:
            eol = f", end of life on {self.eol_on}" if self.eol_on else ""
            return f"{self.name} is Legacy on Bedrock{eol} ({self.source})"
        return f"{self.name} is {state} on Bedrock ({self.source})"


@dataclass(frozen=True)
class ModelCatalog:
    checked_on: date
    models: tuple[CatalogModel, ...]

    def find(self, model_id: str) -> CatalogModel | None:
        """The model known by ``model_id`` (foundation-model or inference-profile id)."""
        for model in self.models:
            if model_id in model.ids:
                return model
        return None

    def __iter__(self) -> Iterator[CatalogModel]:
        return iter(self.models)


def load_catalog(path: Path = CATALOG_FILE) -> ModelCatalog:
    """Read and check the catalog file."""
    document = json.loads(path.read_text())
    models = tuple(_model(entry, i) for i, entry in enumerate(document["models"]))
    seen: set[str] = set()
    for model in models:
        duplicate = seen.intersection(model.ids)
        if duplicate:
            raise CatalogError(f"{path.name}: id {sorted(duplicate)[0]} is listed twice")
        seen.update(model.ids)
    return ModelCatalog(checked_on=date.fromisoformat(document["checkedOn"]), models=models)


def _model(entry: Mapping[str, Any], index: int) -> CatalogModel:
    where = f"models[{index}]"
    try:
        lifecycle = entry["lifecycle"]
        price = entry.get("price")
        model = CatalogModel(
            name=entry["name"],
            provider=entry["provider"],
            foundation_model_id=entry["foundationModelId"],
            inference_profile_ids=tuple(entry.get("inferenceProfileIds") or ()),
            state=lifecycle["state"],
            legacy_on=_date(lifecycle.get("legacyOn")),
            eol_on=_date(lifecycle.get("eolOn")),
            source=entry["source"],
            input_per_1k=float(price["inputPer1k"]) if price else None,
            output_per_1k=float(price["outputPer1k"]) if price else None,
            price_source=str(price["source"]) if price else None,
            price_read_on=_date(price.get("readOn")) if price else None,
            count_tokens=bool(entry.get("countTokens", False)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CatalogError(f"model-catalog.json {where}: malformed entry ({err})") from None
    if model.state not in _STATES:
        raise CatalogError(f"model-catalog.json {where}: state must be one of {_STATES}")
    if model.state != ACTIVE and model.eol_on is None:
        raise CatalogError(f"model-catalog.json {where}: a {model.state} model needs its eolOn")
    if not model.source.startswith("https://"):
        raise CatalogError(f"model-catalog.json {where}: source must be an https:// page")
    return model


def _date(raw: str | None) -> date | None:
    return None if raw is None else date.fromisoformat(raw)
