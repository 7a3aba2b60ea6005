"""Which split each voice may go to when a detector is trained "nested" in an earlier one.

To learn whether more training voices help, a new detector must be compared with an
earlier one on voices *neither* trained on. `trackguard train detector --nest-in ARTIFACT`
makes that set as large as it can be: the voices ARTIFACT trained on stay in train, the
other voices of ARTIFACT's corpus stay out of train (dev or test), and only voices new to
this corpus are split freely. Evaluated with ``--split unseen-voices``, the two models
then share every voice ARTIFACT did not train on, less the new model's dev uploads.

ARTIFACT's voices are the first N catalogue voices of its corpus size (artist i always
sings with catalogue voice i, `trackguard.corpus.people`); the size is read from the
card's corpora record, or from its training-data text for cards that predate the record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from models.artifact import ArtifactCard, load_card

TRAIN_ONLY = ("train",)
HELD_OUT = ("dev", "test")
_SIZE = re.compile(r"size=([\w-]+)")


def artifact_corpus_size(artifact_dir: Path) -> str:
    """The corpus size (`trackguard.corpus.spec.SIZES`) the artifact's primary corpus was built at."""
    return _corpus_size(load_card(artifact_dir, verify=False), artifact_dir)


def _corpus_size(card: ArtifactCard, artifact_dir: Path) -> str:
    recorded = card.spec.get("corpora") or []
    text = str(recorded[0].get("identity", "")) if recorded else card.training_data
    found = _SIZE.search(text)
    if not found:
        raise ValueError(f"{artifact_dir}: its card names no corpus size (looked for 'size=NAME' in "
                         f"{'its corpora record' if recorded else 'its training data'})")
    return found.group(1)


def nested_voice_rule(artifact_dir: Path) -> dict[str, tuple[str, ...]]:
    """Voice artist id -> the splits it may take: ARTIFACT's training voices train only, its corpus's other
    voices dev or test only. Voices not in the mapping may go anywhere."""
    from trackguard.corpus.people import artist_id
    from trackguard.corpus.spec import SIZES

    card = load_card(artifact_dir, verify=False)
    trained = card.metrics.get("train_voices")
    if not trained:
        raise ValueError(f"{artifact_dir} does not record its training voices: it cannot be nested in")
    size = _corpus_size(card, artifact_dir)
    if size not in SIZES:
        raise ValueError(f"{artifact_dir}: unknown corpus size {size!r}")
    trained_set = {str(v) for v in trained}
    voices = (artist_id(i) for i in range(SIZES[size].n_artists))
    return {v: TRAIN_ONLY if v in trained_set else HELD_OUT for v in voices}


def allowed_for_group(voices: list[str], rule: Mapping[str, tuple[str, ...]], splits: tuple[str, ...]
                      ) -> tuple[str, ...]:
    """The splits a group (uploads linked by song or voice) may take: those every one of its voices allows."""
    allowed = [s for s in splits if all(s in rule.get(v, splits) for v in voices)]
    if not allowed:
        raise ValueError(f"voices {voices} share songs but the nesting rule puts them in different splits")
    return tuple(allowed)
