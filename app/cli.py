"""Command-line tasks: `python -m app.cli create-admin --email you@example.com`."""

import argparse
import asyncio
import getpass
import sys

from pydantic import TypeAdapter, ValidationError

from app.config import get_settings
from app.db import open_database
from app.db.migrations import DatabaseSetupError
from app.errors import AppError
from app.schemas.auth import Email, Password
from app.services import admin as admin_service

PASSWORD_ENV = "ADMIN_PASSWORD"  # Settings.admin_password


class CliError(Exception):
    pass


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(str(err["msg"]) for err in exc.errors())


def read_password() -> str:
    """From a prompt on a terminal, else from ADMIN_PASSWORD; never from the command line."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password for the new admin: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CliError("The two passwords differ.")
    else:
        secret = get_settings().admin_password
        password = secret.get_secret_value() if secret else ""
        if not password:
            raise CliError(f"No terminal to prompt on: set {PASSWORD_ENV} to the new admin's password.")
    try:
        checked: str = TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        raise CliError(f"Password refused: {_validation_message(exc)}") from None
    return checked


async def create_admin(email: str) -> str:
    """Create the admin, or promote (and enable) the existing user; a line saying which."""
    settings = get_settings()
    # The database only (migrated, as start-up does, so a fresh database works): no graph, no model.
    async with open_database(settings, migrate=True) as database:
        async with database.sessions() as session, session.begin():
            existing = await admin_service.find_by_email(session, email)
            if existing is not None:
                _, changed = await admin_service.make_admin(session, user_id=existing.id)
                return f"{email} is {'now' if changed else 'already'} an active admin."
        # The prompt waits for a person: no transaction stays open meanwhile.
        password = await asyncio.to_thread(read_password)
        async with database.sessions() as session, session.begin():
            await admin_service.create_admin(session, settings, email=email, password=password)
        return f"Created admin {email}."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-admin",
        help="create an admin, or promote an existing user",
        description=f"The password is prompted for, or read from {PASSWORD_ENV} without a terminal.",
    )
    create.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    try:
        email: str = TypeAdapter(Email).validate_python(args.email)
    except ValidationError as exc:
        parser.error(f"--email: {_validation_message(exc)}")
    # The result line and the exit status are the command's interface to the operator, not log events.
    try:
        sys.stdout.write(asyncio.run(create_admin(email)) + "\n")
    except (CliError, AppError, DatabaseSetupError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
