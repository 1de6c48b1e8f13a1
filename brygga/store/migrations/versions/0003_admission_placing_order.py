"""index the admission import's placing order

``place`` reads pending admissions in chunks ordered by personnummer (whole students per chunk,
keyset paging). Without this index every chunk sorted all pending rows of the round: ~70 ms a chunk
at 100k admissions, 50 chunks a run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:00:00
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.create_index('ix_nya_admission_state_personnummer', ['state', 'personnummer', 'admission_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.drop_index('ix_nya_admission_state_personnummer')
