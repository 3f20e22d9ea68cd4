"""Feedback schemas."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from app.schemas.common import clean_text

COMMENT_CHARS = 2000


def _none_if_empty(value: str) -> str | None:
    return value or None


Comment = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=COMMENT_CHARS),
    AfterValidator(clean_text),
    AfterValidator(_none_if_empty),
]


class FeedbackUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"]
    comment: Comment | None = None  # blank is the same as none


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rating: Literal["up", "down"]
    comment: str | None
