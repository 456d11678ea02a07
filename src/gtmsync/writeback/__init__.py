"""Activities written back to Dynamics as tasks or events, exactly once."""
