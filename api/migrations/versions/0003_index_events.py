"""the index's change log: one row per committed write that changes a resource or the grid tree

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 05:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every worker of the service polls this table to keep its index in step with the others' writes.
    op.create_table('index_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_index_events_created_at', 'index_events', ['created_at'], unique=False)
    # Workers load the embeddings others stored since their last look, by time.
    op.create_index('ix_embeddings_created_at', 'embeddings', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_embeddings_created_at', table_name='embeddings')
    op.drop_index('ix_index_events_created_at', table_name='index_events')
    op.drop_table('index_events')
