"""plantt: contrastive sequence-to-expression models (PlanTT) and the workflow around them.

From Python, a trained model scores sequences in one call (:mod:`plantt.api`)::

    import plantt
    scores = plantt.predict_sequences("results/models/rnaseq3p/plantt/fold_0", sequences)
    differences = plantt.predict_pairs(model_folder, sequences_a, sequences_b)
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["predict_pairs", "predict_sequences", "__version__"]


def __getattr__(name: str) -> Any:
    # imported on first use: `import plantt` (and `plantt --help`) must not wait for PyTorch
    if name in ("predict_sequences", "predict_pairs"):
        from plantt import api

        return getattr(api, name)
    raise AttributeError(f"module 'plantt' has no attribute {name!r}")
