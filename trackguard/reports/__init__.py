"""Human-readable evaluation reports (Markdown + PNG figures + the same numbers as JSON)."""
