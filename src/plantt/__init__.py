"""plantt: contrastive sequence-to-expression models (PlanTT) and the workflow around them."""

__version__ = "0.1.0"
