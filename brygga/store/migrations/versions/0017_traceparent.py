"""nya_admission.traceparent: the W3C trace context an admission carries from when it is read

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 00:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nya_admission') as b:
        b.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nya_admission') as b:
        b.drop_column('traceparent')
