"""A training-only voice adversary: makes the detector's embedding carry as little of the singer as it can.

The detector overfits its training voices (training EER far below test on unseen voices,
and a spread of many logits between voices' bona fide songs). Adversarial training attacks
that: a small classifier learns to tell the training voices apart from the embedding
(on a detached copy, so only the classifier learns from it), and the encoder is trained to
make that classifier's prediction uniform: the domain-confusion loss of Tzeng et al. (2015).
It is used instead of a gradient-reversal layer (Ganin & Lempitsky 2015), whose encoder
objective, maximising the classifier's cross-entropy, is unbounded: on a toy set of two
voices it made the embedding *more* voice-separable, just with the labels swapped.
The adversary is dropped after training; the saved detector is unchanged in shape.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def adversary_scale(progress: float, weight: float) -> float:
    """DANN's ramp: 0 at the start of training, approaching ``weight`` at the end.

    The encoder first learns something worth protecting; confusing a classifier from
    step one only shapes random features.
    """
    p = min(max(progress, 0.0), 1.0)
    return weight * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


class VoiceAdversary(nn.Module):
    """Embedding -> training-voice logits."""

    def __init__(self, embed_dim: int, n_voices: int, hidden: int = 64) -> None:
        super().__init__()
        if n_voices < 2:
            raise ValueError("a voice adversary needs at least two training voices")
        self.classify = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_voices))

    def forward(self, embedding: Tensor) -> Tensor:
        return self.classify(embedding)

    def losses(self, embedding: Tensor, voice: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(classifier loss, encoder confusion loss, classifier logits).

        The classifier loss reaches only the adversary's weights (the embedding is
        detached); the confusion loss, cross-entropy against the uniform distribution,
        reaches only the encoder (the adversary's weights are read detached).
        """
        logits = self(embedding.detach())
        frozen = {name: p.detach() for name, p in self.named_parameters()}
        seen = torch.func.functional_call(self, frozen, (embedding,))
        confusion = -F.log_softmax(seen, dim=1).mean()
        return F.cross_entropy(logits, voice), confusion, logits
