"""Sign-up and log-in."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import TypeAdapter, ValidationError

from app.api.deps import ChatRuntimeDep, CurrentUser, SessionDep, SessionMakerDep, SettingsDep
from app.errors import UnauthorizedError
from app.schemas.auth import Email, TokenRead, UserCreate, UserRead
from app.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, session: SessionDep, settings: SettingsDep) -> UserRead:
    user = await auth_service.register(session, settings, email=body.email, password=body.password)
    return UserRead.model_validate(user)


_EMAIL = TypeAdapter(Email)


def _normalise_email(raw: str) -> str:
    try:
        email: str = _EMAIL.validate_python(raw)
    except ValidationError as exc:
        raise UnauthorizedError("Incorrect email or password") from exc
    return email


@router.post("/login", response_model=TokenRead)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], db: SessionMakerDep, settings: SettingsDep
) -> TokenRead:
    user = await auth_service.authenticate(
        db, settings, email=_normalise_email(form.username), password=form.password
    )
    token = auth_service.issue_access_token(user, settings)
    return TokenRead(access_token=token.token, expires_at=token.expires_at)


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(user: CurrentUser, session: SessionDep, chat: ChatRuntimeDep) -> Response:
    """Delete the account and all of its data (sessions, transcripts, agent state)."""
    await auth_service.delete_account(session, user_id=user.id, stale_after=chat.stale_lease_after)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
