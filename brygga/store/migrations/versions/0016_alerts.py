"""alert_subscription and alert_episode: who is told when a kind of trouble starts and ends

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        'alert_subscription',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=False),
        sa.Column('for_minutes', sa.Integer(), nullable=False),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('breach_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'alert_episode',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('subscription_id', pk, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('value_open', sa.Float(), nullable=False),
        sa.Column('value_last', sa.Float(), nullable=False),
        sa.Column('peak', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_episode_open', 'alert_episode', ['subscription_id', 'resolved_at'])


def downgrade() -> None:
    op.drop_index('ix_alert_episode_open', table_name='alert_episode')
    op.drop_table('alert_episode')
    op.drop_table('alert_subscription')
