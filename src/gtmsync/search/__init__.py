"""Advanced Search with Dynamics filters, in-CRM indicators and daily snapshots."""
