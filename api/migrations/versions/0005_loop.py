"""the loop: change events of every kind, a webhook outbox, schedule runs, project follow-up, street scopes
and normalized search text

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('index_events') as table:
        # What happened (created, updated, closed, capacity, escalated) and which service process wrote
        # it: a worker skips its own events, which it applied after its commit.
        table.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default=''))
        table.add_column(sa.Column('origin', sa.String(length=64), nullable=False, server_default=''))
        # A need written outside any service worker (the CLI) is matched by the one worker that claims it.
        table.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('projects') as table:
        table.add_column(sa.Column('resolution', sa.String(length=12), nullable=False, server_default=''))
        table.add_column(sa.Column('satisfaction', sa.Integer(), nullable=True))
        table.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('api_keys') as table:
        table.add_column(sa.Column('streets', sa.JSON(), nullable=False, server_default='[]'))
    for name in ('needs', 'resources'):
        with op.batch_alter_table(name) as table:
            table.add_column(sa.Column('search_text', sa.Text(), nullable=False, server_default=''))
    op.create_table('project_notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_project_notes_project_id', 'project_notes', ['project_id'], unique=False)
    op.create_table('webhook_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('webhook_id')
    )
    op.create_index('ix_webhook_outbox_due', 'webhook_outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_table('schedule_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=40), nullable=False),
    sa.Column('slot', sa.String(length=40), nullable=False),
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job', 'slot', name='uq_schedule_runs_job_slot')
    )
    # The suggestions list without a status filter pages newest first along this index.
    op.create_index('ix_suggestions_status_id', 'suggestions', ['status', 'id'], unique=False)
    _fill_search_text()


def _fill_search_text() -> None:
    """Existing titles get their search text, as the write path gives new ones."""
    from api.search import search_text

    connection = op.get_bind()
    for name in ('needs', 'resources'):
        table = sa.table(name, sa.column('id', sa.String), sa.column('title', sa.String),
                         sa.column('search_text', sa.Text))
        rows = connection.execute(sa.select(table.c.id, table.c.title)).all()
        if rows:  # one executemany per list, not one statement per row
            connection.execute(table.update().where(table.c.id == sa.bindparam('row_id'))
                               .values(search_text=sa.bindparam('text')),
                               [{'row_id': r.id, 'text': search_text(r.title)} for r in rows])


def downgrade() -> None:
    op.drop_index('ix_suggestions_status_id', table_name='suggestions')
    op.drop_table('schedule_runs')
    op.drop_index('ix_webhook_outbox_due', table_name='webhook_outbox')
    op.drop_table('webhook_outbox')
    op.drop_index('ix_project_notes_project_id', table_name='project_notes')
    op.drop_table('project_notes')
    for name in ('needs', 'resources'):
        with op.batch_alter_table(name) as table:
            table.drop_column('search_text')
    with op.batch_alter_table('api_keys') as table:
        table.drop_column('streets')
    with op.batch_alter_table('projects') as table:
        table.drop_column('finished_at')
        table.drop_column('satisfaction')
        table.drop_column('resolution')
    with op.batch_alter_table('index_events') as table:
        table.drop_column('claimed_by')
        table.drop_column('origin')
        table.drop_column('kind')
