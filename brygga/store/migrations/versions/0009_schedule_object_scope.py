"""schedule_object: the term and organisation unit of each object's instance, so a full export
scoped to one term or unit ends only what left that scope, never what another scope exported

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedule_object') as b:
        b.add_column(sa.Column('term', sa.String(8), nullable=True))
        b.add_column(sa.Column('organisation', sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('schedule_object') as b:
        b.drop_column('organisation')
        b.drop_column('term')
