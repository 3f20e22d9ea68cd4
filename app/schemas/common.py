"""Shared schema pieces."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates (valid in JSON escapes) cannot be
    # encoded as UTF-8: reject both here instead of failing later with a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


CleanStr = Annotated[str, AfterValidator(no_nul)]


class PageParams(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class ErrorRead(BaseModel):
    error: str
    detail: str | list[dict[str, object]]
