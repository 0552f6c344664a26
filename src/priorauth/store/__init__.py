"""The case store: SQLAlchemy tables, Alembic migrations, and transactional operations."""
