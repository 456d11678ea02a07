"""Connect to Dynamics: consent, service vs user account, admins, user mapping, lifecycle."""
