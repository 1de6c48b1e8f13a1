"""archive_package: the packages delivered to the archive (E-ARK SIP), their deterministic ids
and the archive's receipts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('archive_package',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('package_id', sa.String(length=100), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject_uid', sa.String(length=64), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('files', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('archive_id', sa.String(length=128), nullable=True),
    sa.Column('reasons', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('package_id', name='uq_archive_package')
    )
    op.create_index('ix_archive_package_subject', 'archive_package', ['subject_kind', 'subject_uid'])


def downgrade() -> None:
    op.drop_index('ix_archive_package_subject', table_name='archive_package')
    op.drop_table('archive_package')
