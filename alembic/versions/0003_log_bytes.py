"""resource_samples.log_bytes: bytes the gateway wrote to its output per sample

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("resource_samples", sa.Column("log_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resource_samples") as batch:
        batch.drop_column("log_bytes")
