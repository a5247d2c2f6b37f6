"""The PostgreSQL backend (psycopg 3): the only package that talks to PostgreSQL."""

from jobctl.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
