"""ladok_grade: Ladok's grade scales (grunddata betygsskala) as the merit sync last read them, so a
result's BetygsgradID is read through what Ladok lists instead of a hard-coded table

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ladok_grade',
        sa.Column('grade_id', sa.String(length=32), nullable=False),
        sa.Column('scale_id', sa.String(length=32), nullable=False),
        sa.Column('scale_code', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('valid_final', sa.Boolean(), nullable=False),
        sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('grade_id'),
    )


def downgrade() -> None:
    op.drop_table('ladok_grade')
