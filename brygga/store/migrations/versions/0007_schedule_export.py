"""schedule export: schedule_object (the delta's base per target), schedule_dirty (instances
Ladok's feed touched), ladok_contact (students' e-mail addresses from Ladok)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('schedule_object',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('target', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ext_id', sa.String(length=160), nullable=False),
    sa.Column('instance_uid', sa.String(length=64), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('sent_hash', sa.String(length=64), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('target', 'kind', 'ext_id', name='uq_schedule_object')
    )
    op.create_index('ix_schedule_object_instance', 'schedule_object', ['target', 'instance_uid'])
    op.create_table('schedule_dirty',
    sa.Column('instance_uid', sa.String(length=64), nullable=False),
    sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('instance_uid')
    )
    op.create_table('ladok_contact',
    sa.Column('student_uid', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('student_uid')
    )


def downgrade() -> None:
    op.drop_table('ladok_contact')
    op.drop_table('schedule_dirty')
    op.drop_index('ix_schedule_object_instance', table_name='schedule_object')
    op.drop_table('schedule_object')
