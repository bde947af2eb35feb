"""DNA strings <-> uint8 codes <-> soft one-hot tensors.

Codes: A=0, C=1, G=2, T=3, N=4. Lower case is upper-cased; every other character (IUPAC ambiguity
codes, ``X``, ``-``) becomes N, because an ambiguous base carries no information the model could use
and silently zeroing it (as some encoders do) would make it look like a fifth, "absent" base.

Soft one-hot (the paper's Section 3.2): A=[1,0,0,0], C=[0,1,0,0], G=[0,0,1,0], T=[0,0,0,1],
N=[0.25,0.25,0.25,0.25]; tensors are channels-first, shape (batch, 4, length).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# PyTorch is imported by the one function that builds tensors: the data-preparation steps (windows,
# encoding, labels) use the rest of this module and need not pay seconds to import it.

ALPHABET = "ACGTN"
N_CODE = 4

_ENCODE = np.full(256, N_CODE, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _ENCODE[ord(_base)] = _i
    _ENCODE[ord(_base.lower())] = _i

_DECODE = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
# complement of codes: A<->T, C<->G, N->N
_COMPLEMENT_CODE = np.array([3, 2, 1, 0, 4], dtype=np.uint8)

_SOFT_ROWS = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
              [0.0, 0.0, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25]]


@cache
def _soft_table() -> torch.Tensor:
    import torch

    return torch.tensor(_SOFT_ROWS)

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def encode(seq: str) -> np.ndarray:
    """Encode a DNA string as uint8 codes (unknown characters -> N)."""
    return _ENCODE[np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)]


def decode(codes: np.ndarray) -> str:
    """Decode uint8 codes back into an upper-case string."""
    return _DECODE[np.asarray(codes, dtype=np.uint8)].tobytes().decode()


def normalize(seq: str) -> str:
    """Upper-case and replace every non-ACGT character by N."""
    return decode(encode(seq))


def reverse_complement(seq: str) -> str:
    """Reverse complement of a normalized string (N stays N)."""
    return normalize(seq).translate(_COMPLEMENT)[::-1]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of code arrays along the last axis."""
    return _COMPLEMENT_CODE[np.asarray(codes)][..., ::-1].copy()


def soft_one_hot(codes: torch.Tensor | np.ndarray, dtype: torch.dtype | None = None
                 ) -> torch.Tensor:
    """(batch, length) or (length,) uint8 codes -> (batch, 4, length) soft one-hot tensor
    (float32 unless ``dtype`` is given).

    Built on the fly from codes (1 byte per base) so whole datasets fit in device memory.
    """
    import torch

    codes_t = torch.as_tensor(codes)
    if codes_t.dim() == 1:
        codes_t = codes_t.unsqueeze(0)
    table = _soft_table().to(device=codes_t.device, dtype=dtype or torch.float32)
    return table[codes_t.long()].transpose(1, 2).contiguous()
