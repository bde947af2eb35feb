"""Training recipes: how the workflow's ``train`` config becomes one model's training settings.

The config names a recipe (``train.recipe``): ``small_data`` (the default, for the few thousand
ortholog pairs of one lab's experiment) or ``paper`` (the PlanTT paper's, Section 3.3, meant for
tens of thousands of pairs and a GPU). ``train.settings`` holds the paper's recipe, the base of
every recipe; ``train.recipes.<recipe>.<kind>`` changes it per model kind (``plantt`` covers the
shuffled control and ``plantt_from_<assay>``, so the control is always trained as the model it
controls; ``washburn``), and ``train.model_settings.<kind>`` applies the user's own changes last.

One function, :func:`train_settings`, used by the workflow's training rules and by the benchmarks,
so that a benchmark trains exactly what the workflow trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECIPES = ("small_data", "paper")
KINDS = ("plantt", "washburn")


def model_kind(model: str) -> str:
    """The settings kind of a model name: ``washburn``, else ``plantt`` (the shuffled control and
    sequential models are PlanTT models)."""
    return "washburn" if model == "washburn" else "plantt"


def train_settings(train: Mapping[str, Any], kind: str, recipe: str | None = None
                   ) -> dict[str, Any]:
    """The training settings (:class:`plantt.train.TrainSettings` fields) of model kind ``kind``
    under the config's ``train`` section: ``settings``, then the recipe's changes for the kind,
    then ``model_settings`` for the kind. ``recipe`` overrides ``train.recipe``."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    name = recipe or train.get("recipe") or "paper"
    recipes = train.get("recipes") or {}
    if name != "paper" and name not in recipes:
        raise ValueError(f"train.recipe {name!r} has no entry under train.recipes (known: "
                         f"{', '.join(sorted(set(recipes) | {'paper'}))})")
    settings = dict(train.get("settings") or {})
    settings.update((recipes.get(name) or {}).get(kind) or {})
    settings.update((train.get("model_settings") or {}).get(kind) or {})
    return settings
