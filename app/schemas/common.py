"""Shared schema pieces."""

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field

T = TypeVar("T")


def clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates (valid in JSON escapes) cannot be
    # encoded as UTF-8: reject both here instead of failing later with a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


CleanStr = Annotated[str, AfterValidator(clean_text)]


class PageParams(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class Page(BaseModel, Generic[T]):
    """A page of a list; built from the services' Page with `model_validate(..., from_attributes=True)`."""

    items: list[T]
    total: int
    limit: int
    offset: int
