"""drop user.tokens_valid_after: revoking deletes the user's logins instead

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column('user', 'tokens_valid_after')


def downgrade() -> None:
    op.add_column('user', sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=True))
