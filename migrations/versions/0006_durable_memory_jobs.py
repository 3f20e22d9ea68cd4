"""pgvector enabled by the migrations; renewable thread leases; durable memory-extraction jobs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enable_pgvector() -> None:
    """pgvector is not a trusted extension: only a superuser (or a managed database's admin role) may
    create it. A role without that right gets one line saying what to run, not a traceback."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first():
        return
    names = conn.execute(sa.text("SELECT current_user, current_database()")).one()
    if not conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first():
        raise CommandError(
            "pgvector is not installed on this PostgreSQL server. Install it (for example the"
            f" postgresql-NN-pgvector package or the pgvector/pgvector image), then run as a superuser"
            f" in database {names[1]!r}: CREATE EXTENSION vector;"
        )
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.ProgrammingError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege
            raise
        raise CommandError(
            f"The role {names[0]!r} may not create the pgvector extension. Run once as a superuser"
            f" in database {names[1]!r}: CREATE EXTENSION vector;  then start again."
        ) from None
    else:
        savepoint.commit()


def upgrade() -> None:
    _enable_pgvector()
    op.alter_column('thread', 'run_started_at', new_column_name='lease_expires_at')
    # Leases taken before this revision carry a start time, not an expiry: free them.
    op.execute("UPDATE thread SET run_id = NULL, lease_expires_at = NULL")
    op.create_table('memory_job',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['session.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_memory_job_ready', 'memory_job', ['run_after', 'id'], unique=False, postgresql_where=sa.text('failed_at IS NULL'))
    op.create_index(op.f('ix_memory_job_session_id'), 'memory_job', ['session_id'], unique=False)
    op.create_index(op.f('ix_memory_job_user_id'), 'memory_job', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_memory_job_user_id'), table_name='memory_job')
    op.drop_index(op.f('ix_memory_job_session_id'), table_name='memory_job')
    op.drop_index('ix_memory_job_ready', table_name='memory_job', postgresql_where=sa.text('failed_at IS NULL'))
    op.drop_table('memory_job')
    op.execute("UPDATE thread SET run_id = NULL, lease_expires_at = NULL")
    op.alter_column('thread', 'lease_expires_at', new_column_name='run_started_at')
    # The extension stays: other databases objects (mem0's table) may use it.
