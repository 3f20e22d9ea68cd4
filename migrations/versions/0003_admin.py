"""admin roles, token revocation and the audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('user', sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='user', nullable=False))
    # Autogenerate does not compare CHECK constraints: written by hand, kept in step with the model.
    op.create_check_constraint('ck_user_role', 'user', "role IN ('user', 'admin')")
    op.add_column('user', sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=True))
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('target_id', sa.Uuid(), nullable=True),
    sa.Column('target_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_actor_id_id', 'audit_log', ['actor_id', 'id'], unique=False)
    op.create_index('ix_audit_log_target_id_id', 'audit_log', ['target_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_target_id_id', table_name='audit_log')
    op.drop_index('ix_audit_log_actor_id_id', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_column('user', 'tokens_valid_after')
    op.drop_constraint('ck_user_role', 'user', type_='check')
    op.drop_column('user', 'role')
