"""run control: every turn a run, queued runs, approvals, forks

Revision ID: 0010_run_control
Revises: 0009_runs
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = "0010_run_control"
down_revision: str | None = "0009_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("status IN ('pending', 'interrupted')")


def upgrade() -> None:
    op.add_column("run", sa.Column("login_id", sa.Uuid(), nullable=True))
    op.add_column("run", sa.Column("source", sa.Text(), server_default=sa.text("'runs'"), nullable=False))
    op.add_column(
        "run", sa.Column("multitask", sa.Text(), server_default=sa.text("'reject'"), nullable=False)
    )
    op.add_column("run", sa.Column("from_message_id", sa.BigInteger(), nullable=True))
    op.add_column("run", sa.Column("cancel_mode", sa.Text(), nullable=True))
    op.add_column("run", sa.Column("interrupt", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("run", sa.Column("checkpoint_id", sa.Text(), nullable=True))
    op.add_column("run", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("run", sa.Column("last_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.alter_column("run", "message", existing_type=sa.Text(), nullable=True)
    op.create_index(
        "ix_run_waiting", "run", ["session_id", "created_at"], unique=False, postgresql_where=_WAITING
    )


def downgrade() -> None:
    op.drop_index("ix_run_waiting", table_name="run", postgresql_where=_WAITING)
    op.execute("DELETE FROM run WHERE message IS NULL")
    op.alter_column("run", "message", existing_type=sa.Text(), nullable=False)
    for column in (
        "last_seq",
        "expires_at",
        "checkpoint_id",
        "interrupt",
        "cancel_mode",
        "from_message_id",
        "multitask",
        "source",
        "login_id",
    ):
        op.drop_column("run", column)
