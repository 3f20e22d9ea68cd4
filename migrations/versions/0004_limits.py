"""login sessions, login lockout, rate limits, quotas

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    # UNLOGGED: no WAL write per counted request; a crash only forgives the current window.
    op.create_table('rate_limit',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('previous_hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    prefixes=['UNLOGGED']
    )
    op.create_table('auth_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('refresh_jti', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_auth_session_user_id', 'auth_session', ['user_id'], unique=False)
    op.create_table('usage_daily',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('tokens', sa.BigInteger(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day')
    )
    op.create_index('ix_thread_running', 'thread', ['run_started_at'], unique=False, postgresql_where=sa.text('run_id IS NOT NULL'))
    op.add_column('user', sa.Column('daily_message_quota', sa.Integer(), nullable=True))
    op.add_column('user', sa.Column('daily_token_quota', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('user', 'daily_token_quota')
    op.drop_column('user', 'daily_message_quota')
    op.drop_index('ix_thread_running', table_name='thread', postgresql_where=sa.text('run_id IS NOT NULL'))
    op.drop_table('usage_daily')
    op.drop_index('ix_auth_session_user_id', table_name='auth_session')
    op.drop_table('auth_session')
    op.drop_table('rate_limit')
    op.drop_table('login_failure')
