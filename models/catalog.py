"""Imports the built-in scorers so their ``@register`` decorators run.

Adding a scorer: write its class with ``@register(slot, name)`` in a module and
add that module's name here.
"""

from __future__ import annotations

import importlib

BUILT_IN_SCORERS = ("models.detector", "models.verifier", "models.spam")

for _module in BUILT_IN_SCORERS:
    importlib.import_module(_module)
