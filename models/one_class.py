"""One-class spoof head (OC-softmax, Zhang, Jiang & Duan 2021): bona fide tight, synthetic anywhere else.

A linear head with binary cross-entropy lets bona fide scores sit wherever they like as
long as the clones sit higher; on this corpus they drift from song to song and voice to
voice by more than the hardest clones' margin (the report's "Where the errors come from").
OC-softmax scores the cosine between the embedding and one learnt bona fide direction and
asks bona fide windows for a cosine above ``m_bona`` (0.9) while clones only need to stay
below ``m_spoof`` (0.2): bona fide are pulled into one compact cone, clones of any kind
pushed out of it, which the authors found generalises better to unseen attacks.

The head returns the detector contract's spoof logit, ``alpha * -cos``, so it is > 0 leaning
synthetic like any other head; `loss` is OC-softmax written on that logit.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class OneClassHead(nn.Module):
    def __init__(self, embed_dim: int, alpha: float = 20.0, m_bona: float = 0.9, m_spoof: float = 0.2) -> None:
        super().__init__()
        if not -1.0 < m_spoof < m_bona < 1.0:
            raise ValueError("margins must satisfy -1 < m_spoof < m_bona < 1")
        self.centre = nn.Parameter(torch.randn(embed_dim))
        self.alpha, self.m_bona, self.m_spoof = alpha, m_bona, m_spoof

    def forward(self, embedding: Tensor) -> Tensor:
        """[B, D] -> [B, 1] spoof logit: alpha times minus the cosine to the bona fide direction."""
        cos = F.normalize(embedding, dim=-1) @ F.normalize(self.centre, dim=0)
        return (-self.alpha * cos).unsqueeze(-1)

    def loss(self, spoof_logit: Tensor, synthetic: Tensor) -> Tensor:
        """OC-softmax: softplus(alpha * (m_bona - cos)) for bona fide, softplus(alpha * (cos - m_spoof)) for clones."""
        cos = -spoof_logit / self.alpha
        margin = torch.where(synthetic > 0.5, cos - self.m_spoof, self.m_bona - cos)
        return F.softplus(self.alpha * margin).mean()
