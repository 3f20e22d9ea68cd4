"""Sign-up and log-in."""

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import ValidationError

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.errors import UnauthorizedError
from app.schemas.auth import Email, TokenRead, UserCreate, UserRead
from app.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def register(body: UserCreate, session: SessionDep, settings: SettingsDep) -> UserRead:
    user = await auth_service.register(session, settings, email=body.email, password=body.password)
    return UserRead.model_validate(user)


def _normalise_email(raw: str) -> str:
    from pydantic import TypeAdapter

    try:
        email: str = TypeAdapter(Email).validate_python(raw)
    except ValidationError as exc:
        raise UnauthorizedError("Incorrect email or password") from exc
    return email


@router.post("/login", response_model=TokenRead)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> TokenRead:
    user = await auth_service.authenticate(
        session, settings, email=_normalise_email(form.username), password=form.password
    )
    token = auth_service.issue_access_token(user, settings)
    return TokenRead(access_token=token.token, expires_at=token.expires_at)


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
