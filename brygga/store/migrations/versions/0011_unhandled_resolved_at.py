"""unhandled_admission.resolved_at (when it left the queue: the statistics' handling time, which
updated_at cannot give once anything else touches the row), programme_code (the programme of the
admission, a column so the console filters and sorts by it with an index) and the queue-list indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('unhandled_admission') as b:
        b.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('programme_code', sa.String(length=32), nullable=True))
    op.execute("UPDATE unhandled_admission SET resolved_at = updated_at WHERE status <> 'open'")
    programme = ("admission->>'programme_code'" if op.get_bind().dialect.name == "postgresql"
                 else "json_extract(admission, '$.programme_code')")
    op.execute(f"UPDATE unhandled_admission SET programme_code = substr({programme}, 1, 32)")
    op.create_index('ix_unhandled_status_created', 'unhandled_admission', ['status', 'created_at'])
    op.create_index('ix_unhandled_status_programme', 'unhandled_admission', ['status', 'programme_code'])


def downgrade() -> None:
    op.drop_index('ix_unhandled_status_programme', table_name='unhandled_admission')
    op.drop_index('ix_unhandled_status_created', table_name='unhandled_admission')
    with op.batch_alter_table('unhandled_admission') as b:
        b.drop_column('programme_code')
        b.drop_column('resolved_at')
