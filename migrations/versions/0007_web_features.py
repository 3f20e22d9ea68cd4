"""Web app features: sessions named from their first message

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


def downgrade() -> None:
    op.drop_column('session', 'name_is_default')
