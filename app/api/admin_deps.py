"""The admin dependency: the current user, if they are an admin."""

from typing import Annotated

from fastapi import Depends

from app.api.deps import CurrentUser
from app.errors import ForbiddenError
from app.models import Role, User


async def get_admin_user(user: CurrentUser) -> User:
    # Builds on CurrentUser, so a missing, invalid or revoked token is a 401 before it is a 403.
    if user.role != Role.admin:
        raise ForbiddenError("This needs an admin account")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
