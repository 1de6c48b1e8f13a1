"""retention: when a row's personal data was purged

``purged_at`` on every table that holds personal data (admissions, the unhandled queue, återbud
cases, quarantine, outbox, audit log): the purge (``brygga.flows.retention``) sets it, so a row is
pseudonymised once and the counts of what was purged stay visible.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:20:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ('nya_admission', 'unhandled_admission', 'aterbud_case', 'quarantine', 'outbox_message', 'audit_log')


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in reversed(TABLES):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('purged_at')
