"""Export to Dynamics: preferences, mapping, duplicate checks, association, ownership, runs."""
