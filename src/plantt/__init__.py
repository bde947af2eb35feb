"""plantt: contrastive sequence-to-expression models (PlanTT) and the workflow around them.

From Python, a trained model scores, mutates and explains sequences in one call each
(:mod:`plantt.api`; a worked example: ``docs/api_example.py``)::

    import plantt
    model = plantt.load_model("results/models/rnaseq3p/plantt/fold_0")
    scores = plantt.predict_sequences(model, sequences)
    differences = plantt.predict_pairs(model, sequences_a, sequences_b)
    effects = plantt.saturation_mutagenesis(model, sequence)  # (4, L)
    contributions = plantt.attribute(model, sequences)    # (n, 4, L)

The command line is ``plantt`` (or ``python -m plantt``).
"""

from typing import Any

__version__ = "0.1.0"
API = ("load_model", "predict_sequences", "predict_pairs", "saturation_mutagenesis",
       "attribute")
__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    # imported on first use: `import plantt` (and `plantt --help`) must not wait for PyTorch
    if name in API:
        from plantt import api

        return getattr(api, name)
    raise AttributeError(f"module 'plantt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
