"""Storage: SQLAlchemy 2 tables and repository functions (SQLite and Postgres)."""
