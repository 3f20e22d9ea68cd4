"""Web app features: sessions named from their first message; full-text search; a memory switch per session;
feedback on replies (with the turn's trace id on each reply, and anonymous counts of deleted users')

Revision ID: 0007_web_features
Revises: 0006
Create Date: 2027-01-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007_web_features'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing sessions keep the names they have: only sessions created from now on are auto-named.
    op.add_column('session', sa.Column('name_is_default', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('session', sa.Column('memory_enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False))
    op.add_column('message', sa.Column('trace_id', sa.String(length=32), nullable=True))
    op.create_table('feedback',
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('rating', sa.String(length=8), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("rating IN ('up', 'down')", name='ck_feedback_rating'),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', 'user_id')
    )
    op.create_index(op.f('ix_feedback_user_id'), 'feedback', ['user_id'], unique=False)
    op.create_table('feedback_tally',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('rating', sa.String(length=8), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("rating IN ('up', 'down')", name='ck_feedback_tally_rating'),
    sa.PrimaryKeyConstraint('day', 'rating')
    )
    # 'simple': no stemming or stop words, as users write in several languages.
    op.create_index('ix_session_name_fts', 'session', [sa.text("to_tsvector('simple', name)")], unique=False, postgresql_using='gin')
    # On a large message table, build this index beforehand with CREATE INDEX CONCURRENTLY (README,
    # "Upgrading"): building it here blocks the turns' inserts for as long as it takes.
    op.create_index('ix_message_content_fts', 'message', [sa.text("to_tsvector('simple', content)")], unique=False, postgresql_using='gin', if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_message_content_fts', table_name='message', postgresql_using='gin')
    op.drop_index('ix_session_name_fts', table_name='session', postgresql_using='gin')
    op.drop_table('feedback_tally')
    op.drop_index(op.f('ix_feedback_user_id'), table_name='feedback')
    op.drop_table('feedback')
    op.drop_column('message', 'trace_id')
    op.drop_column('session', 'memory_enabled')
    op.drop_column('session', 'name_is_default')
