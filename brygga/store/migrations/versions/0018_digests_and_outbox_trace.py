"""Digests per organisation unit (alert_subscription.organisation, last_sent_at) and the W3C trace
context on every outbox row (outbox_message.traceparent)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 02:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert_subscription') as b:
        b.add_column(sa.Column('organisation', sa.String(length=64), nullable=True))
        b.add_column(sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('outbox_message') as b:
        b.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message') as b:
        b.drop_column('traceparent')
    with op.batch_alter_table('alert_subscription') as b:
        b.drop_column('last_sent_at')
        b.drop_column('organisation')
