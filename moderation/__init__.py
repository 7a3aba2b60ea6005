"""Moderation: storage behind narrow interfaces, queue semantics, the HTTP app."""
