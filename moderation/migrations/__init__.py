"""Alembic migrations of the moderation store (run by `moderation.migrate.upgrade`, no alembic.ini needed)."""
