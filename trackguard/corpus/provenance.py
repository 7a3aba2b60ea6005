"""Versions of the tools whose output ends up in the corpus bytes (recorded in corpus.json).

The same seed gives the same bytes only with the same versions of these, so a
corpus says what built it.
"""

from __future__ import annotations

import re
import subprocess
from importlib import metadata

_TOOLS = {
    "ffmpeg": (["ffmpeg", "-version"], r"ffmpeg version (\S+)"),
    "fluidsynth": (["fluidsynth", "--version"], r"version (\S+)"),
    "flite": (["flite", "--version"], r"version: (\S+)"),
    "espeak-ng": (["espeak-ng", "--version"], r"text-to-speech: (\S+)"),
    "festival": (["festival", "--version"], r"System: (\S+?):"),
    "sox": (["sox", "--version"], r"SoX v(\S+)"),
}
_PACKAGES = ("numpy", "scipy", "pyworld", "pyarrow", "soundfile")


def tool_versions() -> dict[str, str]:
    versions = {}
    for name, (cmd, pattern) in _TOOLS.items():
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            found = re.search(pattern, out.stdout + out.stderr)
            versions[name] = found.group(1) if found else "unknown"
        except (OSError, subprocess.SubprocessError):
            versions[name] = "missing"
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "missing"
    return versions
