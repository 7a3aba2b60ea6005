"""trackguard: content-integrity pipeline for music streaming.

This package holds the cross-layer core (contracts, home directory), the CLI,
the synthetic corpus generator and the benchmarks. The layers themselves are
the top-level packages ``features`` → ``models`` → ``pipelines`` → ``moderation``.
"""

__version__ = "0.1.0"
