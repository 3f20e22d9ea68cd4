"""The user table."""

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import created_at_field


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    hashed_password: str = Field(max_length=128)
    is_active: bool = True
    created_at: datetime = created_at_field()
