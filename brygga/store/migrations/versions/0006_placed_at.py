"""placed_at: when Ladok took the admission's placement

The ``ovrigt`` rule asks whether Ladok placed other admissions since one began failing; that is
``max(placed_at)``, not ``updated_at`` (which the villkor sync and the retention purge touch too).
Rows placed before this revision keep NULL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.drop_column('placed_at')
