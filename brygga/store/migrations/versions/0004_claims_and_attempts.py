"""claims on admissions, transient failures in a row, attempts on quarantined input

``nya_admission.claimed_by/claimed_until``: a placement process claims the rows it works on
(one atomic UPDATE; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two processes never place the
same admission. ``transient_failures``/``failing_since``: transient errors in a row and since when, for the
``ovrigt`` rule.
``quarantine.attempts/last_seen_at``: an unreadable page or reply met again counts on its row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('transient_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_quarantine_message', ['source', 'message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_message')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('attempts')
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
        batch_op.drop_column('transient_failures')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
