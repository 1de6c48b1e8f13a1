"""reconciliation_run and drift: the nightly NyA↔Ladok reconciliation's runs and what it found

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 00:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        'reconciliation_run',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rounds', sa.JSON(), nullable=False),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('compared', sa.JSON(), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'drift',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=48), nullable=False),
        sa.Column('subject', sa.String(length=160), nullable=False),
        sa.Column('personnummer', sa.String(length=12), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=128), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_drift_status_kind', 'drift', ['status', 'kind'])
    op.create_index('ix_drift_kind_subject', 'drift', ['kind', 'subject'])


def downgrade() -> None:
    op.drop_index('ix_drift_kind_subject', table_name='drift')
    op.drop_index('ix_drift_status_kind', table_name='drift')
    op.drop_table('drift')
    op.drop_table('reconciliation_run')
