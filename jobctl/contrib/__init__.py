"""Integrations with frameworks jobctl does not depend on; each is imported only by its users."""
