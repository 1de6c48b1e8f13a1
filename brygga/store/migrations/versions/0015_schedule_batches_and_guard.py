"""schedule export in batches, and its guard against mass removal: schedule_object.outbox_id (the
outbox batch of an object's latest version) replaces sent_hash; schedule_plan and schedule_removal
hold a run's removals until an operator approves them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 00:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    with op.batch_alter_table('schedule_object') as b:
        b.add_column(sa.Column('outbox_id', pk, nullable=True))
        b.drop_column('sent_hash')
    op.create_table(
        'schedule_plan',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('target', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('terms', sa.JSON(), nullable=False),
        sa.Column('organisation', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('removals', sa.Integer(), nullable=False),
        sa.Column('scope_objects', sa.Integer(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_schedule_plan_status', 'schedule_plan', ['target', 'status'])
    op.create_table(
        'schedule_removal',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('plan_id', pk, nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('ext_id', sa.String(length=160), nullable=False),
        sa.Column('instance_uid', sa.String(length=64), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_schedule_removal_plan', 'schedule_removal', ['plan_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_schedule_removal_plan', table_name='schedule_removal')
    op.drop_table('schedule_removal')
    op.drop_index('ix_schedule_plan_status', table_name='schedule_plan')
    op.drop_table('schedule_plan')
    with op.batch_alter_table('schedule_object') as b:
        b.drop_column('outbox_id')
        b.add_column(sa.Column('sent_hash', sa.String(length=64), nullable=True))
