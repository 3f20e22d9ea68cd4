"""admin overview: per-minute counts of failed and refused requests; indexes for today's usage

Revision ID: 0008_admin_overview
Revises: 0007_web_features
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0008_admin_overview'
down_revision: str | None = '0007_web_features'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_event_count',
    sa.Column('bucket_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket_start', 'kind')
    )
    op.create_index('ix_message_created_at', 'message', ['created_at'], unique=False, postgresql_using='brin', if_not_exists=True)
    op.create_index('ix_usage_daily_day', 'usage_daily', ['day'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_usage_daily_day', table_name='usage_daily')
    op.drop_index('ix_message_created_at', table_name='message', postgresql_using='brin')
    op.drop_table('api_event_count')
