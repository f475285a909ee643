"""Alembic environment: runs on the connection the service hands over (api.db.migrate)."""

from alembic import context
from sqlalchemy import create_engine

from api.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    # `alembic revision --autogenerate` from the command line: compare against a scratch database.
    url = context.config.get_main_option("sqlalchemy.url") or "sqlite://"
    connection = create_engine(url).connect()
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
