"""checkpoint_history: where each checkpoint stood when (one row per position it moved to), so a
NyA sequence stream can be read again "since 14:00" from the position it had then

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 03:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'checkpoint_history',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('position', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_checkpoint_history_name_at', 'checkpoint_history', ['name', 'at'])


def downgrade() -> None:
    op.drop_index('ix_checkpoint_history_name_at', table_name='checkpoint_history')
    op.drop_table('checkpoint_history')
