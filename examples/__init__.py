"""jobctl's example app: the seed's job patterns over the app's own tables (see README.md here)."""
