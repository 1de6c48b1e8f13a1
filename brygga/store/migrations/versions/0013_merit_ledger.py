"""nya_merit (the merit sync's ledger: one row per Ladok merit, whichever path found it, with what
was queued and whether NyA holds it) and nya_applicant (NyA's applicants as they first appear, and
the snapshot of their earlier merits). Merits sent before this revision were known to NyA by the
feed event's HandelseUID: their rows keep that id (``merit_id``) under their Ladok reference, so a
retraction withdraws what NyA holds.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:00:00
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

FIELDS = ("personnummer", "type", "utbildningskod", "date", "tillfalleskod", "modul", "credits", "grade")


def upgrade() -> None:
    op.create_table(
        'nya_merit',
        sa.Column('ref', sa.String(length=120), nullable=False),
        sa.Column('merit_id', sa.String(length=100), nullable=False),
        sa.Column('personnummer', sa.String(length=12), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=True),
        sa.Column('content', sa.JSON(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('held', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('event_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('ref'),
    )
    op.create_index('ix_nya_merit_personnummer', 'nya_merit', ['personnummer'])
    pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        'nya_applicant',
        sa.Column('id', pk, autoincrement=True, nullable=False),
        sa.Column('round', sa.String(length=32), nullable=False),
        sa.Column('personnummer', sa.String(length=12), nullable=False),
        sa.Column('sequence', sa.BigInteger(), nullable=False),
        sa.Column('snapshot', sa.String(length=16), nullable=False),
        sa.Column('merits', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('claimed_by', sa.String(length=96), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('snapshot_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('round', 'personnummer', name='uq_nya_applicant'),
    )
    op.create_index('ix_nya_applicant_state', 'nya_applicant', ['snapshot', 'id'])
    op.create_index('ix_nya_applicant_personnummer', 'nya_applicant', ['personnummer'])
    _backfill()


def _backfill() -> None:
    """Merits sent by the HandelseUID-keyed sync: one ledger row per Ladok reference they carry."""
    conn = op.get_bind()
    outbox = sa.table('outbox_message', sa.column('id'), sa.column('kind'), sa.column('status'),
                      sa.column('payload', sa.JSON), sa.column('created_at'))
    ledger = sa.table('nya_merit', *(sa.column(c) for c in (
        'ref', 'merit_id', 'personnummer', 'type', 'content_hash', 'content', 'version', 'state', 'held', 'source',
        'event_at',
        'created_at', 'updated_at')))
    rows: dict[str, dict] = {}
    for _, status, payload, created in conn.execute(
            sa.select(outbox.c.id, outbox.c.status, outbox.c.payload, outbox.c.created_at)
            .where(outbox.c.kind == 'merit').order_by(outbox.c.id)):
        merit = (payload or {}).get("merit") if isinstance(payload, dict) else None
        ref = (merit or {}).get("source_reference") or ""
        if not merit or not ref.startswith("ladok:") or ref.startswith("ladok:handelse:") or len(ref) > 120:
            continue
        content = json.dumps({f: merit.get(f) for f in FIELDS}, sort_keys=True)
        rows[ref] = {"ref": ref, "merit_id": str(merit.get("merit_id"))[:100],
                     "personnummer": str(merit.get("personnummer"))[:12], "type": str(merit.get("type"))[:32],
                     "content_hash": hashlib.sha256(content.encode()).hexdigest(), "content": merit, "version": 1,
                     "state": "present", "held": status == "sent" or rows.get(ref, {}).get("held", False),
                     "source": "feed", "event_at": None, "created_at": created, "updated_at": created}
    items = list(rows.values())
    for i in range(0, len(items), 500):
        conn.execute(sa.insert(ledger), items[i:i + 500])


def downgrade() -> None:
    op.drop_index('ix_nya_applicant_personnummer', table_name='nya_applicant')
    op.drop_index('ix_nya_applicant_state', table_name='nya_applicant')
    op.drop_table('nya_applicant')
    op.drop_index('ix_nya_merit_personnummer', table_name='nya_merit')
    op.drop_table('nya_merit')
