"""User management for admins; every route answers 403 to anyone else."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.admin_deps import AdminUser, get_admin_user
from app.api.deps import RuntimeDep, SessionDep, SettingsDep
from app.api.limits import rate_limit
from app.schemas.admin import (
    AdminOverview,
    AdminSessionRead,
    AdminUserDetail,
    AdminUserRead,
    AuditQuery,
    AuditRead,
    PasswordReset,
    QuotaRead,
    QuotaUpdate,
    RoleUpdate,
    UsageRead,
    UserQuery,
)
from app.schemas.common import Page, PageParams
from app.services import admin as admin_service

# On the router as well as in the handlers: a route added later cannot forget the check.
# The limit first: a refused request costs no admin check.
router = APIRouter(
    prefix="/admin", tags=["admin"], dependencies=[rate_limit("admin"), Depends(get_admin_user)]
)


@router.get("/overview", response_model=AdminOverview)
async def overview(_: AdminUser, session: SessionDep) -> AdminOverview:
    """Users, today's turns and tokens (UTC day), failed and refused requests in the last hour."""
    return AdminOverview.model_validate(await admin_service.overview(session))


@router.get("/users", response_model=Page[AdminUserRead])
async def list_users(
    _: AdminUser, session: SessionDep, settings: SettingsDep, query: Annotated[UserQuery, Query()]
) -> Page[AdminUserRead]:
    """Search by email (substring, any case), filter by role, active and creation time, sort by
    `created_at`, `email` or `last_active` (`-` first: descending). Two statements per page."""
    filters = admin_service.UserFilter(
        email=query.email,
        role=query.role.value if query.role else None,
        is_active=query.is_active,
        created_after=query.created_after,
        created_before=query.created_before,
    )
    result = await admin_service.list_users(
        session,
        settings,
        filters=filters,
        sort=query.sort_key,
        descending=query.descending,
        limit=query.limit,
        offset=query.offset,
    )
    return Page[AdminUserRead].model_validate(result, from_attributes=True)


@router.get("/users/{user_id}", response_model=AdminUserDetail)
async def get_user(
    user_id: uuid.UUID, _: AdminUser, session: SessionDep, settings: SettingsDep
) -> AdminUserDetail:
    """The user as listed, with their usage (overall and today, UTC) and quotas; never their messages."""
    found = await admin_service.get_user(session, settings, user_id)
    return AdminUserDetail(
        **AdminUserRead.model_validate(found.user).model_dump(),
        usage=UsageRead.model_validate(found.usage),
        quota=QuotaRead.model_validate(found.quota),
    )


@router.post("/users/{user_id}/disable", response_model=AdminUserRead)
async def disable_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> AdminUserRead:
    user = await admin_service.set_active(session, actor=admin, user_id=user_id, active=False)
    return AdminUserRead.model_validate(user)


@router.post("/users/{user_id}/enable", response_model=AdminUserRead)
async def enable_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> AdminUserRead:
    user = await admin_service.set_active(session, actor=admin, user_id=user_id, active=True)
    return AdminUserRead.model_validate(user)


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    user_id: uuid.UUID, body: PasswordReset, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """Set a new password; every token the user holds stops working."""
    await admin_service.reset_password(
        session, settings, actor=admin, user_id=user_id, password=body.password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/users/{user_id}/quota", response_model=AdminUserRead)
async def set_quota(
    user_id: uuid.UUID, body: QuotaUpdate, admin: AdminUser, session: SessionDep
) -> AdminUserRead:
    """Override the user's daily quotas (messages, tokens); null restores the server's default."""
    user = await admin_service.set_quota(
        session,
        actor=admin,
        user_id=user_id,
        messages_per_day=body.messages_per_day,
        tokens_per_day=body.tokens_per_day,
    )
    return AdminUserRead.model_validate(user)


@router.patch("/users/{user_id}/role", response_model=AdminUserRead)
async def set_role(
    user_id: uuid.UUID, body: RoleUpdate, admin: AdminUser, session: SessionDep
) -> AdminUserRead:
    user = await admin_service.set_role(session, actor=admin, user_id=user_id, role=body.role)
    return AdminUserRead.model_validate(user)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep, rt: RuntimeDep) -> Response:
    """Delete the user and everything of theirs, as `DELETE /auth/me` does (409 while one of their
    sessions is answering).

    The audit log keeps this deletion, with the user's email, by design: it records what admins did.
    """
    rt.forget_threads(
        await admin_service.delete_user(session, actor=admin, user_id=user_id, lease_ttl=rt.lease_ttl)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/{user_id}/sessions", response_model=Page[AdminSessionRead])
async def list_user_sessions(
    user_id: uuid.UUID, _: AdminUser, session: SessionDep, page: Annotated[PageParams, Query()]
) -> Page[AdminSessionRead]:
    """Their sessions' dates, never their names or messages: conversations stay their owner's."""
    result = await admin_service.list_user_sessions(
        session, user_id=user_id, limit=page.limit, offset=page.offset
    )
    return Page[AdminSessionRead].model_validate(result, from_attributes=True)


@router.get("/audit", response_model=Page[AuditRead])
async def list_audit(
    _: AdminUser, session: SessionDep, query: Annotated[AuditQuery, Query()]
) -> Page[AuditRead]:
    """Admin actions, newest first."""
    result = await admin_service.list_audit(
        session,
        actor_id=query.actor_id,
        target_id=query.target_id,
        action=query.action,
        limit=query.limit,
        offset=query.offset,
    )
    return Page[AuditRead].model_validate(result, from_attributes=True)
