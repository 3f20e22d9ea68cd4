"""Sign-up, log-in, token refresh, log-out and password changes."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import TypeAdapter, ValidationError

from app.api.auth_cookie import (
    CookieMode,
    clear_refresh_cookie,
    cookie_refresh_token,
    set_refresh_cookie,
)
from app.api.deps import (
    CurrentUser,
    RuntimeDep,
    SessionDep,
    SessionMakerDep,
    SettingsDep,
    TokenClaims,
)
from app.api.limits import ClientAddress, rate_limit
from app.errors import UnauthorizedError
from app.schemas.auth import Email, PasswordChange, RefreshRequest, TokenRead, UserCreate, UserRead
from app.services import auth as auth_service
from app.services import export as export_service
from app.services import tokens
from app.services.tokens import TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_read(pair: TokenPair, response: Response, settings: SettingsDep, *, cookie: bool) -> TokenRead:
    if cookie:
        set_refresh_cookie(response, pair, settings)
    return TokenRead(
        access_token=pair.access_token,
        expires_at=pair.access_expires_at,
        refresh_token=None if cookie else pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at,
    )


@router.post(
    "/register",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[rate_limit("register")],
)
async def register(body: UserCreate, session: SessionDep, settings: SettingsDep) -> UserRead:
    user = await auth_service.register(session, settings, email=body.email, password=body.password)
    return UserRead.model_validate(user)


_EMAIL = TypeAdapter(Email)


def _normalise_email(raw: str) -> str | None:
    """The address a log-in names; None when it is not one (it then fails like an unknown email)."""
    try:
        email: str = _EMAIL.validate_python(raw)
    except ValidationError:
        return None
    return email


@router.post("/login", response_model=TokenRead, dependencies=[rate_limit("login")])
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: SessionMakerDep,
    rt: RuntimeDep,
    settings: SettingsDep,
    address: ClientAddress,
    response: Response,
    cookie: CookieMode,
) -> TokenRead:
    pair = await auth_service.log_in(
        db,
        rt.db.pool,
        settings,
        username=form.username,
        email=_normalise_email(form.username),
        password=form.password,
        address=address,
    )
    return _token_read(pair, response, settings, cookie=cookie)


@router.post("/refresh", response_model=TokenRead, dependencies=[rate_limit("refresh")])
async def refresh(
    request: Request,
    response: Response,
    rt: RuntimeDep,
    settings: SettingsDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenRead:
    """A new pair for the same login. Each refresh token works once; presenting one again revokes
    the login it belongs to.

    The token comes from the body or, with no body, from the web app's cookie (which then needs the
    CSRF header, and is rotated in place)."""
    from_cookie = body is None
    token = body.refresh_token if body is not None else cookie_refresh_token(request)
    if token is None:
        raise UnauthorizedError("Send a refresh token in the body, or log in again")
    pair = await tokens.refresh(rt.db.pool, settings, token)
    return _token_read(pair, response, settings, cookie=from_cookie)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=[rate_limit("api")])
async def logout(
    user: CurrentUser,
    claims: TokenClaims,
    rt: RuntimeDep,
    settings: SettingsDep,
    everywhere: Annotated[bool, Query(description="Revoke every login of this user")] = False,
) -> Response:
    """Revoke this login (or all of them): its access and refresh tokens stop working at once.

    A token whose login is already revoked gets 401 here like everywhere else (CurrentUser checks it).
    """
    await tokens.log_out(rt.db.pool, claims, everywhere=everywhere)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, settings)
    return response


@router.post("/password", response_model=TokenRead, dependencies=[rate_limit("login")])
async def change_password(
    body: PasswordChange,
    user: CurrentUser,
    db: SessionMakerDep,
    rt: RuntimeDep,
    settings: SettingsDep,
    address: ClientAddress,
    response: Response,
    cookie: CookieMode,
) -> TokenRead:
    """Every login of the user is revoked; the tokens returned belong to a new one."""
    pair = await auth_service.change_password(
        db,
        rt.db.pool,
        settings,
        user=user,
        current=body.current_password,
        new=body.new_password,
        address=address,
    )
    return _token_read(pair, response, settings, cookie=cookie)


@router.get("/me", response_model=UserRead, dependencies=[rate_limit("api")])
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.get(
    "/me/export",
    dependencies=[rate_limit("export")],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {}},
            "description": "A zip of the caller's data: README.txt, account.json, sessions/<id>.json"
            " and .md, memories.json",
        }
    },
)
async def export_me(user: CurrentUser, rt: RuntimeDep) -> StreamingResponse:
    """Everything of the caller's account, as one zip written while it downloads."""
    when = datetime.now(UTC)
    return StreamingResponse(
        export_service.export_zip(rt, user, when=when),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export_service.filename(when)}"',
            "Cache-Control": "no-store",
        },
    )


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, dependencies=[rate_limit("api")])
async def delete_me(
    user: CurrentUser, session: SessionDep, rt: RuntimeDep, settings: SettingsDep
) -> Response:
    """Delete the account with every session, transcript, checkpoint, memory, memory job and
    rate-limit counter (409 while a session is answering).

    The admin audit log keeps its copy of the email by design: it records what admins did.
    """
    rt.forget_threads(await auth_service.delete_account(session, user_id=user.id, lease_ttl=rt.lease_ttl))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, settings)
    return response
