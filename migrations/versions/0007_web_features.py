"""Web app features: sessions named from their first message; full-text search; a memory switch per session

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
    # 'simple': no stemming or stop words, as users write in several languages.
    op.create_index('ix_session_name_fts', 'session', [sa.text("to_tsvector('simple', name)")], unique=False, postgresql_using='gin')
    op.create_index('ix_message_content_fts', 'message', [sa.text("to_tsvector('simple', content)")], unique=False, postgresql_using='gin')


def downgrade() -> None:
    op.drop_index('ix_message_content_fts', table_name='message', postgresql_using='gin')
    op.drop_index('ix_session_name_fts', table_name='session', postgresql_using='gin')
    op.drop_column('session', 'memory_enabled')
    op.drop_column('session', 'name_is_default')
