"""Data sharing settings and the contributions log."""
