"""Alert channels: one module per kind (email, webhook)."""
