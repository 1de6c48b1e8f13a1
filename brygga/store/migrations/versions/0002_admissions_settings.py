"""admissions, settings, publication payloads, återbud case links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nya_admission',
    sa.Column('admission_id', sa.String(length=64), nullable=False),
    sa.Column('round', sa.String(length=32), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('personnummer', sa.String(length=12), nullable=True),
    sa.Column('offer_id', sa.String(length=64), nullable=True),
    sa.Column('utbildningskod', sa.String(length=32), nullable=True),
    sa.Column('tillfalleskod', sa.String(length=32), nullable=True),
    sa.Column('programme_internal', sa.Boolean(), nullable=False),
    sa.Column('package_id', sa.String(length=64), nullable=True),
    sa.Column('fee_liable', sa.Boolean(), nullable=False),
    sa.Column('application_fee_paid', sa.Boolean(), nullable=True),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('aterbud_date', sa.String(length=10), nullable=True),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('student_uid', sa.String(length=64), nullable=True),
    sa.Column('utbildningstillfalle_uid', sa.String(length=64), nullable=True),
    sa.Column('antagning_uid', sa.String(length=64), nullable=True),
    sa.Column('package_uid', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('admission_id')
    )
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.create_index('ix_nya_admission_round_state', ['round', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_nya_admission_antagning_uid'), ['antagning_uid'], unique=False)

    op.create_table('setting',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('publication_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
    with op.batch_alter_table('aterbud_case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('antagning_uid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('study_start', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('aterbud_case', schema=None) as batch_op:
        batch_op.drop_column('study_start')
        batch_op.drop_column('antagning_uid')
    with op.batch_alter_table('publication_item', schema=None) as batch_op:
        batch_op.drop_column('payload')
    op.drop_table('setting')
    with op.batch_alter_table('nya_admission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nya_admission_antagning_uid'))
        batch_op.drop_index('ix_nya_admission_round_state')
    op.drop_table('nya_admission')
