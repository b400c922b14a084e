"""Child processes for the store's crash tests."""
