"""Our models in the shape other sequence-model libraries use, and theirs in ours.

tangermeme, gReLU, captum's examples and most genomics code call a model on a float one-hot batch
``(N, 4, L)`` (channels A, C, G, T) and read ``(N, targets)``. A PlanTT model is called on a *pair*
and its towers return an embedding; what a single sequence is worth to the model is the tower's
score ``sum(z)`` (the odd head is ``score(a) - score(b)``). :class:`SequenceScore` presents that
score as a plain ``torch.nn.Module`` ``(N, 4, L) -> (N, 1)``, so that, for example::

    from tangermeme.saturation_mutagenesis import saturation_mutagenesis
    from plantt.interop import SequenceScore
    from plantt.models import load_model

    scorer = SequenceScore(load_model("results/models/rnaseq3p/plantt/fold_0")).eval()
    effects = saturation_mutagenesis(scorer, one_hot)   # one_hot: (N, 4, 3000) float

gives the same effects as ``plantt ism`` (to float rounding). Input channels are used as given: a
one-hot base is 1 in its channel, and our own code writes an N as 0.25 in every channel (the
towers were trained so) where tangermeme writes zeros; give windows without N, or encode N as
:func:`plantt.encoding.soft_one_hot` does, to compare scores exactly.

The other way, :class:`ExternalTower` wraps any module that maps ``(N, 4, L)`` to ``(N, k)`` (or
``(N,)``) as a tower of ``k`` outputs, so that ``TwoTower(ExternalTower(module, L))`` is a
contrastive model with the odd head, and ``SingleSequenceModel(ExternalTower(module, L))`` scores
single sequences: either can be handed to :func:`plantt.ism.ism_scores`, the editing and
variant-effect code of this package (through full tower passes: the sliced ISM of
:mod:`plantt.fastism` knows only our own layers).
"""

from __future__ import annotations

import torch
from torch import nn

from plantt.models import SingleSequenceModel, TwoTower


class SequenceScore(nn.Module):
    """One sequence's score under a PlanTT model, ``(N, 4, L)`` float -> ``(N, 1)``.

    ``model`` is a two-tower PlanTT model, a single-sequence model (``plantt fit``), an ensemble of
    either (its mean score), or a bare tower; the score is ``tower(x).sum(-1)``. The module holds
    the model's own tower (no copy): put it in eval mode, as the libraries expect."""

    def __init__(self, model: nn.Module):
        super().__init__()
        tower = model.tower if isinstance(model, TwoTower | SingleSequenceModel) else model
        if not isinstance(tower, nn.Module):
            raise TypeError(f"expected a PlanTT model or tower, got {type(model).__name__}")
        self.tower = tower
        self.seq_len: int = int(getattr(tower, "seq_len", 0) or getattr(model, "seq_len", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 4:
            raise ValueError(f"expected a one-hot batch of shape (N, 4, L), got {tuple(x.shape)}")
        return self.tower(x).sum(dim=-1, keepdim=True)


class ExternalTower(nn.Module):
    """Any ``(N, 4, L) -> (N, k)`` module as a tower of ``k`` outputs, for sequences of
    ``seq_len`` bases (the towers of this package check the length; so does this one)."""

    def __init__(self, module: nn.Module, seq_len: int):
        super().__init__()
        if seq_len < 1:
            raise ValueError("seq_len must be positive")
        self.module = module
        self.seq_len = int(seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.seq_len:
            raise ValueError(f"tower built for sequences of {self.seq_len} bases, "
                             f"got {x.shape[-1]}")
        out = self.module(x)
        if isinstance(out, tuple | list):
            raise TypeError("the wrapped module returns several outputs: wrap a module that "
                            "returns one (N, k) tensor")
        return out.reshape(out.shape[0], -1)
