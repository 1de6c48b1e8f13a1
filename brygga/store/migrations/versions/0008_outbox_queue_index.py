"""outbox: an index (destination, status, id): the due rows of a large backlog are read in id
order, a batch at a time, without reading and sorting the whole backlog for every batch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 21:20:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_queue', 'outbox_message', ['destination', 'status', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_queue', table_name='outbox_message')
