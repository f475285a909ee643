"""sentence embeddings by text, and the shared terms stored with each suggestion

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 03:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Embeddings are keyed by a hash of model and normalized text: a restart, refit or model swap
    # finds every unchanged text here instead of encoding it again.
    op.create_table('embeddings',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=40), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_embeddings_model', 'embeddings', ['model'], unique=False)
    with op.batch_alter_table('suggestions') as batch:
        batch.add_column(sa.Column('terms', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('suggestions') as batch:
        batch.drop_column('terms')
    op.drop_index('ix_embeddings_model', table_name='embeddings')
    op.drop_table('embeddings')
