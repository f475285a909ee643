"""review page sessions kept on the server: logout ends them, idle ones expire

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 05:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_web_sessions_key_id', 'web_sessions', ['key_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_web_sessions_key_id', table_name='web_sessions')
    op.drop_table('web_sessions')
