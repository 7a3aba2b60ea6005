"""The artists' voices: Debian speech synthesisers, spoken one line at a time.

Each voice is an (engine, parameters) pair. The catalogue order is fixed so that a
size with N artists always uses the first N voices; it interleaves engines,
languages and sexes so that even the small corpus is varied.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

VOICE_SR = 16_000  # every vocal is worked on at 16 kHz (the TTS voices' own band)


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str  # flite | espeak-ng | festival
    params: tuple[tuple[str, str], ...]
    language: str

    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True)

    def param(self, name: str, default: str = "") -> str:
        return dict(self.params).get(name, default)


def _v(engine: str, language: str, **params: str) -> Voice:
    return Voice(engine, tuple(sorted(params.items())), language)


CATALOGUE: tuple[Voice, ...] = (
    _v("flite", "en", voice="slt"),
    _v("espeak-ng", "en", voice="en-us+m3", pitch="45", speed="150"),
    _v("festival", "en", voice="ked_diphone"),
    _v("espeak-ng", "en", voice="en+f2", pitch="65", speed="145"),
    _v("flite", "en", voice="rms"),
    _v("festival", "it", voice="lp_diphone"),
    _v("flite", "en", voice="awb"),
    _v("espeak-ng", "es", voice="es+f3", pitch="55", speed="150"),
    _v("flite", "en", voice="kal16"),
    _v("espeak-ng", "de", voice="de+m4", pitch="40", speed="140"),
    _v("festival", "ca", voice="upc_ca_ona_hts"),
    _v("espeak-ng", "fr", voice="fr+f1", pitch="60", speed="150"),
    _v("festival", "it", voice="pc_diphone"),
    _v("espeak-ng", "en", voice="en-gb-x-rp+m7", pitch="35", speed="155"),
    _v("espeak-ng", "en", voice="en+f4", pitch="75", speed="160"),
    _v("espeak-ng", "en", voice="en-gb-scotland+m2", pitch="50", speed="145"),
    # Voices 17-28 only the detector size uses: more unseen singers per split, so the
    # detector learns generator artefacts rather than the few voices it trained on.
    _v("festival", "en", voice="kal_diphone"),
    _v("espeak-ng", "en", voice="en+f5", pitch="70", speed="150"),
    _v("espeak-ng", "en", voice="en-us+klatt", pitch="45", speed="145"),
    _v("espeak-ng", "es", voice="es+m2", pitch="40", speed="150"),
    _v("espeak-ng", "de", voice="de+f2", pitch="62", speed="145"),
    _v("espeak-ng", "fr", voice="fr+m5", pitch="42", speed="150"),
    _v("espeak-ng", "it", voice="it+f1", pitch="66", speed="150"),
    _v("espeak-ng", "ca", voice="ca+m1", pitch="38", speed="145"),
    _v("espeak-ng", "en", voice="en-029+m4", pitch="48", speed="150"),
    _v("espeak-ng", "en", voice="en-us-nyc+f3", pitch="68", speed="155"),
    _v("espeak-ng", "en", voice="en+klatt3", pitch="58", speed="150"),
    _v("espeak-ng", "en", voice="en-gb-x-gbclan+m6", pitch="44", speed="145"),
    # Voices 29-40 only the detector-wide size uses: twelve more singers, seven of them
    # recorded speakers of festival voices no earlier size has (Czech, Russian and Finnish
    # diphone/unit-selection voices singing English lyrics with their own accent), so that
    # training, dev calibration and evaluation all hold more voices. Debian's other festival
    # voices are left out: cmu_us_slt_arctic_hts is flite slt's speaker (voice 1), and
    # hindi_NSK_diphone crashes festival on Latin text.
    _v("festival", "en", voice="czech_dita"),
    _v("espeak-ng", "en", voice="en-gb-x-gbcwmd+Annie", pitch="64", speed="150"),
    _v("festival", "en", voice="msu_ru_nsh_clunits"),
    _v("espeak-ng", "es", voice="es-419+Andy", pitch="44", speed="150"),
    _v("festival", "en", voice="suo_fi_lj_diphone"),
    _v("festival", "en", voice="czech_machac"),
    _v("espeak-ng", "fr", voice="fr-be+belinda", pitch="66", speed="150"),
    _v("festival", "en", voice="hy_fi_mv_diphone"),
    _v("espeak-ng", "de", voice="de+boris", pitch="40", speed="145"),
    _v("festival", "en", voice="czech_krb"),
    _v("espeak-ng", "it", voice="it+m8", pitch="46", speed="150"),
    _v("festival", "en", voice="czech_ph"),
)


def _run(cmd: list[str], stdin: bytes | None = None) -> None:
    subprocess.run(cmd, input=stdin, check=True, capture_output=True, timeout=120)


def _render_files(voice: Voice, lines: list[str], workdir: Path) -> list[Path]:
    paths = [workdir / f"line{i:03d}.wav" for i in range(len(lines))]
    name = voice.param("voice")
    if voice.engine == "flite":
        for text, path in zip(lines, paths, strict=True):
            _run(["flite", "-voice", name, "-t", text, "-o", str(path)])
    elif voice.engine == "espeak-ng":
        for text, path in zip(lines, paths, strict=True):
            _run(["espeak-ng", "-v", name, "-p", voice.param("pitch", "50"), "-s", voice.param("speed", "160"),
                  "-w", str(path), text])
    elif voice.engine == "festival":
        # One festival process for all lines: its start-up dominates a single line.
        script = [f"(voice_{name})"]
        for text, path in zip(lines, paths, strict=True):
            clean = text.replace('"', "").replace("\\", "")
            script.append(f'(utt.save.wave (utt.synth (Utterance Text "{clean}")) "{path}" \'riff)')
        (workdir / "lines.scm").write_text("\n".join(script) + "\n")
        _run(["festival", "-b", str(workdir / "lines.scm")])
    else:
        raise ValueError(f"unknown TTS engine {voice.engine!r}")
    return paths


def _to_voice_sr(x: np.ndarray, sr: int) -> np.ndarray:
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr == VOICE_SR:
        return x
    g = np.gcd(sr, VOICE_SR)
    return resample_poly(x, VOICE_SR // g, sr // g)


def trim_silence(x: np.ndarray, threshold_db: float = -40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut the TTS engine's own leading/trailing silence (engines differ in how much they add)."""
    hop = VOICE_SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    energy = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(20 * np.log10(energy / (energy.max() + 1e-12)) > threshold_db)
    if len(active) == 0:
        return x
    margin = int(margin_s * VOICE_SR)
    return x[max(0, active[0] * hop - margin) : min(len(x), (active[-1] + 1) * hop + margin)]


def speak(voice: Voice, lines: list[str]) -> list[np.ndarray]:
    """Each line spoken by ``voice``: float64 mono at VOICE_SR, silence trimmed."""
    with tempfile.TemporaryDirectory(prefix="tg-tts-") as tmp:
        paths = _render_files(voice, lines, Path(tmp))
        out = []
        for path in paths:
            x, sr = sf.read(str(path), dtype="float64")
            out.append(trim_silence(_to_voice_sr(x, int(sr))))
    return out
