"""Imports the built-in scorers so their ``@register`` decorators run.

A new scorer module is added here (one line) after writing its class.
"""

from __future__ import annotations

import models.detector  # noqa: F401
import models.spam  # noqa: F401
import models.verifier  # noqa: F401
