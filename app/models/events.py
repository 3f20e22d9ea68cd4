"""Counts of failed and refused API requests per minute, for the admin overview."""

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class ApiEventCount(SQLModel, table=True):
    """How many requests of one kind ended in one UTC minute: `error.<code>` for a 5xx (or an error
    event ending a stream), `rate_limited.<code>` for a 429. Only failing requests write here, a
    batch at a time (app/services/api_events.py); housekeeping deletes rows after two days."""

    __tablename__ = "api_event_count"

    bucket_start: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    kind: str = Field(primary_key=True, max_length=64)
    count: int
