#!/usr/bin/env python3
"""Find (or start) the PostgreSQL and Redis that `./flowgate test` runs against.

Standard library only, so it runs before and without the virtual environment.

    python scripts/services.py env [--state-dir DIR]   # print `export VAR=...` lines
    python scripts/services.py stop DIR                # stop throwaway servers started by `env`

For each service, in order:
1. `DATABASE_URL` / `REDIS_URL` when set (non-empty) in the environment;
2. a server on the default port: PostgreSQL on 127.0.0.1:5432 that accepts the `postgres` user
   without a password (database `flowgate`, created when missing), Redis on 127.0.0.1:6379;
3. a throwaway server started from installed binaries (`initdb`/`pg_ctl`, `redis-server`) in the
   state directory on a free port; `stop` shuts it down and removes the directory.
4. otherwise: say what to install, and exit 2.

`FLOWGATE_FORCE_THROWAWAY=1` skips step 2 (to exercise step 3 on a machine that has servers).
Progress goes to stderr; stdout carries only the `export` lines, for `eval`.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PG_DEFAULT_PORT = 5432
REDIS_DEFAULT_PORT = 6379
PG_USER = "postgres"
DB_NAME = "flowgate"
STATE_FILE = "services.json"
EXIT_MISSING = 2

INSTALL_HINT = """\
Flowgate's tests need PostgreSQL and Redis. Any one of these will do:
  * point at servers you have:  DATABASE_URL=postgres://USER:PASS@HOST:PORT/DB
                                REDIS_URL=redis://HOST:PORT/0
  * run local servers on 127.0.0.1:5432 (user `postgres`, trust auth) and 127.0.0.1:6379;
  * or just install the binaries, and throwaway servers are started for each test run:
      Debian/Ubuntu:  sudo apt install postgresql redis-server
      Fedora/RHEL:    sudo dnf install postgresql-server redis
      macOS:          brew install postgresql redis
"""

# Where distributions put PostgreSQL's server binaries when they are not on PATH.
PG_BIN_GLOBS = [
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG RPMs
    "/opt/homebrew/opt/postgresql*/bin",  # Homebrew (Apple silicon), keg-only versions
    "/usr/local/opt/postgresql*/bin",  # Homebrew (Intel)
    "/Applications/Postgres.app/Contents/Versions/*/bin",
]


def log(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- PostgreSQL helpers ----------------------------------------------------------------------


def find_psql(extra_dirs: tuple[str, ...] = ()) -> str | None:
    for directory in extra_dirs:
        candidate = Path(directory) / "psql"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("psql")


def pg_query(port: int, sql: str, *, psql: str | None, dbname: str = "postgres") -> str | None:
    """Run one statement as `postgres` without a password; its output, or None when refused.

    Uses `psql` when there is one, else psycopg when this Python has it; raises LookupError when
    neither is available (the caller then settles for the TCP probe).
    """
    if psql:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "3"}
        env.pop("PGPASSWORD", None)
        cmd = [psql, "-X", "-w", "-q", "-tA", "-h", HOST, "-p", str(port), "-U", PG_USER]
        cmd += ["-d", dbname, "-v", "ON_ERROR_STOP=1", "-c", sql]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        return result.stdout.strip() if result.returncode == 0 else None
    try:
        import psycopg  # optional: present when run from the project's venv
    except ImportError as exc:
        raise LookupError("neither psql nor psycopg is available") from exc
    try:
        with psycopg.connect(
            host=HOST, port=port, user=PG_USER, dbname=dbname, connect_timeout=3, autocommit=True
        ) as conn:
            cursor = conn.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
            return "\n".join("|".join(str(v) for v in row) for row in rows)
    except psycopg.Error:
        return None


def pg_ensure_database(port: int, *, psql: str | None) -> None:
    """Create the `flowgate` database when it is missing (harmless if another run races us)."""
    exists = pg_query(port, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", psql=psql)
    if exists != "1":
        pg_query(port, f'CREATE DATABASE "{DB_NAME}"', psql=psql)
        log(f"created database {DB_NAME!r}")


def pg_url(port: int) -> str:
    return f"postgres://{PG_USER}@{HOST}:{port}/{DB_NAME}"


def local_postgres() -> str | None:
    """The URL of a usable PostgreSQL on the default port, or None."""
    if not tcp_open(HOST, PG_DEFAULT_PORT):
        return None
    psql = find_psql()
    try:
        if pg_query(PG_DEFAULT_PORT, "SELECT 1", psql=psql) != "1":
            log(
                f"PostgreSQL on {HOST}:{PG_DEFAULT_PORT} does not accept user {PG_USER!r} "
                "without a password; not using it"
            )
            return None
        pg_ensure_database(PG_DEFAULT_PORT, psql=psql)
    except LookupError:
        log(f"no psql to check {HOST}:{PG_DEFAULT_PORT}; trusting the open port")
    return pg_url(PG_DEFAULT_PORT)


def find_pg_bindir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres (newest version first)."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for pattern in PG_BIN_GLOBS:
        found = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        candidates.extend(Path(p) for p in found)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _version_key(path: str) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in path).split()
    return tuple(int(d) for d in digits)


@dataclass
class RunAs:
    """Runs PostgreSQL's tools as a non-root user when we are root (initdb refuses root)."""

    user: str | None = None
    uid: int = field(default_factory=os.geteuid)
    gid: int = field(default_factory=os.getegid)

    @classmethod
    def for_postgres(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(user=name, uid=entry.pw_uid, gid=entry.pw_gid)
        raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user")

    def wrap(self, cmd: list[str]) -> list[str]:
        if self.user is None:
            return cmd
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *cmd]
        return ["su", "-s", "/bin/sh", self.user, "-c", shlex.join(cmd)]

    def make_dir(self, path: Path) -> None:
        path.mkdir(mode=0o700, exist_ok=True)
        if self.user is not None:
            os.chown(path, self.uid, self.gid)


def run_checked(cmd: list[str], *, cwd: Path, what: str) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"{what} failed ({shlex.join(cmd)}):\n{output}")


def start_postgres(state_dir: Path, bindir: Path) -> dict:
    """initdb + pg_ctl start on a free port; returns what `stop` needs."""
    run_as = RunAs.for_postgres()
    if run_as.user is not None:
        # The other user must be able to reach its directory inside ours.
        state_dir.chmod(0o711)
        log(f"running as root: PostgreSQL runs as OS user {run_as.user!r}")
    pg_dir = state_dir / "pg"
    run_as.make_dir(pg_dir)
    data_dir = pg_dir / "data"
    run_checked(
        run_as.wrap(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        cwd=pg_dir,
        what="initdb",
    )
    info = {"bindir": str(bindir), "data_dir": str(data_dir), "run_as": run_as.user}
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        options = (
            f"-p {port} -c listen_addresses={HOST} -k {shlex.quote(str(pg_dir))} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        cmd = [
            str(bindir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(pg_dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ]
        try:
            run_checked(run_as.wrap(cmd), cwd=pg_dir, what="pg_ctl start")
        except RuntimeError as exc:
            last_error = exc
            continue
        info["port"] = port
        psql = find_psql((str(bindir),))
        with contextlib.suppress(LookupError):
            pg_ensure_database(port, psql=psql)
        log(f"PostgreSQL: throwaway server from {bindir} on {HOST}:{port}")
        return info
    raise RuntimeError(f"could not start PostgreSQL: {last_error}")


def stop_postgres(info: dict) -> None:
    run_as = RunAs.for_postgres() if info.get("run_as") else RunAs()
    cmd = [
        str(Path(info["bindir"]) / "pg_ctl"),
        "-D",
        info["data_dir"],
        "-m",
        "immediate",
        "-w",
        "-t",
        "30",
        "stop",
    ]
    result = subprocess.run(
        run_as.wrap(cmd),
        cwd=Path(info["data_dir"]).parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log(f"pg_ctl stop: {(result.stdout + result.stderr).strip()}")


# --- Redis -----------------------------------------------------------------------------------


def find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in (
        "/usr/sbin/redis-server",
        "/opt/homebrew/bin/redis-server",
        "/usr/local/bin/redis-server",
    ):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def start_redis(state_dir: Path, binary: str) -> dict:
    redis_dir = state_dir / "redis"
    redis_dir.mkdir(mode=0o700, exist_ok=True)
    pidfile = redis_dir / "redis.pid"
    for _attempt in range(3):
        port = free_port()
        cmd = [
            binary,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(redis_dir),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(redis_dir / "redis.log"),
        ]
        subprocess.run(cmd, cwd=redis_dir, capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if redis_ping(HOST, port):
                log(f"Redis: throwaway server ({binary}) on {HOST}:{port}")
                return {"port": port, "pidfile": str(pidfile)}
            time.sleep(0.1)
        _stop_pidfile(pidfile)
    raise RuntimeError(f"could not start redis-server; see {redis_dir / 'redis.log'}")


def _stop_pidfile(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises ProcessLookupError once it has gone
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def stop_redis(info: dict) -> None:
    _stop_pidfile(Path(info["pidfile"]))


# --- commands --------------------------------------------------------------------------------


def save_state(state_dir: Path, state: dict) -> None:
    (state_dir / STATE_FILE).write_text(json.dumps(state))


def stop(state_dir: Path) -> None:
    """Stop whatever `env` started in state_dir, then remove it."""
    state_file = state_dir / STATE_FILE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if "postgres" in state:
            stop_postgres(state["postgres"])
        if "redis" in state:
            stop_redis(state["redis"])
        log(f"stopped throwaway servers in {state_dir}")
    shutil.rmtree(state_dir, ignore_errors=True)


def resolve(state_dir: Path | None) -> dict[str, str]:
    """Choose (and if need be start) PostgreSQL and Redis; return the environment to export."""
    force_throwaway = os.environ.get("FLOWGATE_FORCE_THROWAWAY", "") not in ("", "0")
    exports: dict[str, str] = {}

    database_url = os.environ.get("DATABASE_URL", "")
    if database_url:
        log("PostgreSQL: DATABASE_URL from the environment")
    elif not force_throwaway:
        database_url = local_postgres() or ""
        if database_url:
            log(f"PostgreSQL: local server on {HOST}:{PG_DEFAULT_PORT}")

    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        log("Redis: REDIS_URL from the environment")
    elif not force_throwaway and redis_ping(HOST, REDIS_DEFAULT_PORT):
        redis_url = f"redis://{HOST}:{REDIS_DEFAULT_PORT}/0"
        log(f"Redis: local server on {HOST}:{REDIS_DEFAULT_PORT}")

    pg_bindir = None if database_url else find_pg_bindir()
    redis_binary = None if redis_url else find_redis_server()
    missing = []
    if not database_url and pg_bindir is None:
        missing.append(
            "PostgreSQL: DATABASE_URL unset, no usable server on 127.0.0.1:5432, "
            "no initdb/pg_ctl/postgres binaries"
        )
    if not redis_url and redis_binary is None:
        missing.append(
            "Redis: REDIS_URL unset, no server on 127.0.0.1:6379, no redis-server binary"
        )
    if missing:
        for item in missing:
            log(f"missing: {item}")
        print(INSTALL_HINT, file=sys.stderr, end="")
        raise SystemExit(EXIT_MISSING)

    if pg_bindir is not None or redis_binary is not None:
        if state_dir is None:
            state_dir = Path(tempfile.mkdtemp(prefix="flowgate-services."))
        state_dir.mkdir(parents=True, exist_ok=True)
        exports["FLOWGATE_SERVICES_DIR"] = str(state_dir)
        state: dict = {}
        try:
            if pg_bindir is not None:
                state["postgres"] = start_postgres(state_dir, pg_bindir)
                save_state(state_dir, state)
                database_url = pg_url(state["postgres"]["port"])
            if redis_binary is not None:
                state["redis"] = start_redis(state_dir, redis_binary)
                save_state(state_dir, state)
                redis_url = f"redis://{HOST}:{state['redis']['port']}/0"
        except Exception:
            save_state(state_dir, state)
            stop(state_dir)
            raise

    exports["DATABASE_URL"] = database_url
    exports["REDIS_URL"] = redis_url
    return exports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    env_cmd = commands.add_parser("env", help="print export lines for DATABASE_URL and REDIS_URL")
    env_cmd.add_argument(
        "--state-dir", type=Path, help="where throwaway servers live (default: a new temp dir)"
    )
    stop_cmd = commands.add_parser("stop", help="stop the throwaway servers started by env")
    stop_cmd.add_argument("state_dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "stop":
        stop(args.state_dir)
        return 0
    try:
        exports = resolve(args.state_dir)
    except RuntimeError as exc:
        log(str(exc))
        return 1
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
