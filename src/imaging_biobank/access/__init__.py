"""Who may do what: API tokens with roles, and the audit log of data access."""
