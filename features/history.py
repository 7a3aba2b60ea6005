"""As-of behaviour features of uploaders and distributors, for the spam model.

Every feature of an upload at time ``t`` uses only uploads at or before ``t``
(never after), so the same numbers can be computed in streaming, where the future
is unknown, and a model trained on them does not learn from look-ahead. An upload
never counts itself; other uploads with the very same timestamp do count (they
have already happened when this one is scored).

| feature | why it signals spam |
| --- | --- |
| ``uploader_count_1h`` | bulk bursts: dozens of tracks from one account within an hour |
| ``uploader_count_24h`` | sustained daily volume no human release schedule has |
| ``uploader_count_7d`` | slower farms that stay under hourly limits |
| ``uploader_prior_uploads`` | all earlier uploads by the account: new accounts behave differently |
| ``uploader_short_share`` | share of the account's earlier tracks lasting 30–32 s (just past the royalty threshold) |
| ``distributor_count_24h`` | a distributor suddenly pushing far more than usual is being abused |
| ``seconds_since_prev`` | machine-paced uploads arrive seconds apart (NaN for a first upload) |
| ``title_prior_count`` | the same title (version tags in brackets ignored) + artist delivered again: re-uploads |
| ``title_prior_any_artist`` | the same title under any artist: re-uploads that also change the credit |
| ``artist_new_uploader`` | an artist with earlier uploads, delivered now by an account that never delivered them |

Cost is O(n log n): one sort by (key, time) and binary searches, no pairwise scan.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features.metadata import skeleton

HISTORY_FEATURES = (
    "uploader_count_1h",
    "uploader_count_24h",
    "uploader_count_7d",
    "uploader_prior_uploads",
    "uploader_short_share",
    "distributor_count_24h",
    "seconds_since_prev",
    "title_prior_count",
    "title_prior_any_artist",
    "artist_new_uploader",
)
# "(Sped Up)", "[Slowed + Reverb]": a re-upload keeps the title and adds a bracketed tag.
_BRACKETS_RE = re.compile(r"[\(\[\{][^\)\]\}]*[\)\]\}]")
_MS = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000}


def _timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps; unparseable values become NaT (those uploads are error verdicts)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    return pd.to_datetime(values.astype(str), utc=True, format="ISO8601", errors="coerce")


def _millis(ts: pd.Series) -> np.ndarray:
    return np.asarray(ts.dt.as_unit("ms").astype("int64"), dtype=np.int64)


class _Grouped:
    """Uploads sorted by (key, time), with a composite int64 key for binary search.

    ``comp = code * stride + (t - t0)`` with ``stride`` larger than the time span
    plus the longest window, so a window search never crosses into another key.
    """

    def __init__(self, keys: pd.Series, t: np.ndarray, max_window: int) -> None:
        codes, _ = pd.factorize(keys.astype("string").fillna("\x00<missing>"), sort=False)
        t0 = int(t.min()) if len(t) else 0
        stride = int(t.max() - t0 if len(t) else 0) + max_window + 1
        if codes.max(initial=0) + 1 > (2**62) // stride:
            raise ValueError("history table too large for the composite sort key; split it by time")
        self.order = np.lexsort((t, codes))
        self.comp = codes[self.order].astype(np.int64) * stride + (t[self.order] - t0)
        self.codes = codes[self.order]
        self.start = np.searchsorted(self.codes, self.codes, side="left")
        self.at_or_before = np.searchsorted(self.comp, self.comp, side="right")  # exclusive end
        self.first_same_t = np.searchsorted(self.comp, self.comp, side="left")

    def unsort(self, sorted_values: np.ndarray) -> np.ndarray:
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out

    def count_within(self, window_ms: int) -> np.ndarray:
        """Other uploads of the same key in [t - window, t]."""
        lo = np.searchsorted(self.comp, self.comp - window_ms, side="left")
        return self.unsort((self.at_or_before - lo - 1).astype(np.float64))

    def count_prior(self) -> np.ndarray:
        return self.unsort((self.at_or_before - self.start - 1).astype(np.float64))

    def share_prior(self, flag: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Share of other uploads at or before t (with a known value) that have ``flag``."""
        f = np.concatenate([[0.0], np.cumsum(flag[self.order])])
        k = np.concatenate([[0.0], np.cumsum(known[self.order])])
        hits = f[self.at_or_before] - f[self.start] - flag[self.order]
        base = k[self.at_or_before] - k[self.start] - known[self.order]
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.unsort(np.where(base > 0, hits / np.maximum(base, 1), np.nan))

    def seconds_since_prev(self) -> np.ndarray:
        same_t = self.at_or_before - self.first_same_t - 1
        prev = self.first_same_t - 1
        has_prev = (prev >= self.start) & (prev >= 0)
        gap = np.where(has_prev, (self.comp - self.comp[np.maximum(prev, 0)]) / 1000.0, np.nan)
        return self.unsort(np.where(same_t > 0, 0.0, gap))


def _base_title(title: str) -> str:
    return skeleton(_BRACKETS_RE.sub(" ", title))


def _text_features(df: pd.DataFrame, t: np.ndarray, window: int) -> dict[str, np.ndarray]:
    """Features keyed by title / artist text (NaN when the table has no such columns)."""
    names = ("title_prior_count", "title_prior_any_artist", "artist_new_uploader")
    if "title" not in df or "artist_name" not in df:
        return {name: np.full(len(df), np.nan) for name in names}
    titles = df["title"].fillna("").astype(str).map(_base_title)
    artists = df["artist_name"].fillna("").astype(str).map(skeleton)
    uploaders = df["uploader_id"].astype("string").fillna("")
    artist_prior = _Grouped(artists, t, window).count_prior()
    artist_uploader_prior = _Grouped(artists + "\x1f" + uploaders, t, window).count_prior()
    return {
        "title_prior_count": _Grouped(titles + "\x1f" + artists, t, window).count_prior(),
        "title_prior_any_artist": _Grouped(titles, t, window).count_prior(),
        "artist_new_uploader": ((artist_prior > 0) & (artist_uploader_prior == 0)).astype(np.float64),
    }


def history_features(df: pd.DataFrame, short_band_s: tuple[float, float] = (30.0, 32.0)) -> pd.DataFrame:
    """As-of history features for every row of an upload table, indexed by upload_id.

    ``df`` needs upload_id, uploader_id, distributor_id, uploaded_at (datetime or
    ISO-8601 text); ``duration_s`` and title + artist_name are optional (their
    features are NaN without them). ``short_band_s`` is the [lo, hi) duration band
    counted by ``uploader_short_share``.

    Rows that cannot be placed in time (unparseable uploaded_at) and repeats of an
    upload_id after its first row are left out: both become error verdicts, and
    neither has a well-defined "before". Every input upload_id still gets a row
    (all NaN for the rows left out).
    """
    ids = df["upload_id"].astype(str)
    ts = _timestamps(df["uploaded_at"])
    keep = ts.notna().to_numpy() & ~ids.duplicated().to_numpy()
    frame = _history(df[keep].reset_index(drop=True), _millis(ts[keep]), short_band_s)
    return frame.reindex(pd.Index(ids.drop_duplicates(), name="upload_id"))


def _history(df: pd.DataFrame, t: np.ndarray, short_band_s: tuple[float, float]) -> pd.DataFrame:
    longest = max(_MS.values())
    up = _Grouped(df["uploader_id"], t, longest)
    dist = _Grouped(df["distributor_id"], t, longest)
    out = {f"uploader_count_{w}": up.count_within(_MS[w]) for w in ("1h", "24h", "7d")}
    out["uploader_prior_uploads"] = up.count_prior()
    if "duration_s" in df:
        d = pd.to_numeric(df["duration_s"], errors="coerce").to_numpy(dtype=np.float64)
        known = np.isfinite(d).astype(np.float64)
        short = (known > 0) & (d >= short_band_s[0]) & (d < short_band_s[1])
        out["uploader_short_share"] = up.share_prior(short.astype(np.float64), known)
    else:
        out["uploader_short_share"] = np.full(len(df), np.nan)
    out["distributor_count_24h"] = dist.count_within(_MS["24h"])
    out["seconds_since_prev"] = up.seconds_since_prev()
    out.update(_text_features(df, t, longest))
    frame = pd.DataFrame(out, index=pd.Index(df["upload_id"].astype(str), name="upload_id"))
    return frame[list(HISTORY_FEATURES)]
