"""outbox_message.claimed_by: who holds a claimed outbox row (the archive export's deliveries), so
the next try of the same task, or a process on the same host, takes over a claim whose holder died
instead of waiting out its lease

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 04:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message') as b:
        b.add_column(sa.Column('claimed_by', sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as b:
        b.drop_column('claimed_by')
