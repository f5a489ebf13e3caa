"""Least-privilege Redis access for twinstream: the ACL rules of its user.

The worker and the API touch only keys under ``<TWIN_KEY_PREFIX>:`` and only
through the commands in :data:`REDIS_COMMANDS` (the twin store, its Lua
scripts, and the API's probes). :func:`redis_acl_rule` renders one ``ACL
SETUSER`` / aclfile line for that user; :func:`redis_acl_file` a whole aclfile
that also switches the unrestricted ``default`` user off.

Passwords are written as ``#<sha256>``, so neither the aclfile nor
``ACL LIST`` holds them in clear. Point the clients at the user with
``TWIN_REDIS_URL=redis://twinstream:PASSWORD@host:6379/0`` (or ``rediss://`` for
TLS, see ``SECURITY.md``).

For an operator: ``TWIN_REDIS_PASSWORD=... python -m stream.security redis-acl
[--user twinstream] [--prefix ts] [--file]`` prints the rule (or a whole aclfile).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Sequence

__all__ = ["REDIS_COMMANDS", "main", "redis_acl_file", "redis_acl_rule"]

# Every command twinstream sends to Redis, including those run inside its Lua
# scripts: Redis checks a script's calls against the caller's ACL too.
REDIS_COMMANDS: tuple[str, ...] = (
    # connection: health checks (redis-py, the API's /readyz); SELECT only when the
    # URL names a database other than 0. Not CLIENT SETINFO: redis-py sends it at
    # connect and ignores the refusal (an ACL LOG entry; Redis < 7.2 lacks it anyway).
    "ping",
    "select",
    # reads: claim_partition, load_twins, get_twin, counters, patient_ids,
    # stale_candidates, the API's lag probe
    "get",
    "mget",
    "hget",
    "hgetall",
    "lrange",
    "llen",
    "smembers",
    "zrangebyscore",
    # writes: claim_partition (redis-py's incr() sends INCRBY) and the commit /
    # outbox-ack scripts
    "incrby",
    "set",
    "hset",
    "hincrby",
    "rpush",
    "ltrim",
    "sadd",
    "zadd",
    "zrem",
    # scripts (redis-py's Script: EVALSHA, SCRIPT LOAD on NOSCRIPT; pipelines check
    # SCRIPT EXISTS first; never plain EVAL) and MULTI/EXEC of the transactional pipeline
    "evalsha",
    "script|load",
    "script|exists",
    "multi",
    "exec",
    "discard",
)

_USER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PREFIX = re.compile(r"^[a-z0-9_]{1,16}$")


def _password_rule(password: str) -> str:
    if not password:
        raise ValueError("a Redis password must not be empty")
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def redis_acl_rule(user: str, password: str, prefix: str = "ts") -> str:
    """The ACL rule of ``user``: on, this password, keys ``<prefix>:*``, :data:`REDIS_COMMANDS`.

    No pub/sub channels, no other key, no other command (so no ``KEYS``,
    ``FLUSHALL``, ``CONFIG``, ``DEBUG``, ``MODULE``, ``ACL``...).

    >>> rule = redis_acl_rule("twinstream", "s3cret", "ts")
    >>> rule.split()[:3]
    ['user', 'twinstream', 'on']
    >>> "s3cret" in rule, "~ts:*" in rule, "-@all" in rule, "+evalsha" in rule
    (False, True, True, True)
    >>> redis_acl_rule("twinstream", "pw", "ts*")
    Traceback (most recent call last):
    ...
    ValueError: key prefix 'ts*' must match ^[a-z0-9_]{1,16}$ (it is used in a key pattern)
    """
    if not _USER.match(user):
        raise ValueError(f"Redis user name {user!r} must match {_USER.pattern}")
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"key prefix {prefix!r} must match {_PREFIX.pattern} (it is used in a key pattern)"
        )
    commands = " ".join(f"+{c}" for c in REDIS_COMMANDS)
    return (
        f"user {user} on {_password_rule(password)} resetkeys ~{prefix}:* resetchannels"
        f" -@all {commands}"
    )


def redis_acl_file(
    user: str, password: str, prefix: str = "ts", admin_password: str | None = None
) -> str:
    """An aclfile: the twinstream user, the ``default`` user off, an optional ``admin``.

    Without this file's ``default`` line, Redis would keep its default user
    (no password, every command). ``admin`` (all keys and commands) exists only
    when ``admin_password`` is given, for an operator's ``redis-cli --user admin``.

    >>> text = redis_acl_file("twinstream", "pw", "ts")
    >>> [line.split()[1] for line in text.splitlines() if line.startswith("user ")]
    ['default', 'twinstream']
    >>> "user default off" in text
    True
    """
    # An aclfile holds only user lines: no comments.
    lines = [
        "user default off resetpass resetkeys resetchannels -@all",
        redis_acl_rule(user, password, prefix),
    ]
    if admin_password is not None:
        lines.append(f"user admin on {_password_rule(admin_password)} ~* &* +@all")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stream.security redis-acl``: print the ACL rule; password from the env."""
    parser = argparse.ArgumentParser(prog="python -m stream.security", description=__doc__)
    parser.add_argument("what", choices=["redis-acl"])
    parser.add_argument("--user", default=os.environ.get("TWIN_REDIS_USER") or "twinstream")
    parser.add_argument("--prefix", default=os.environ.get("TWIN_KEY_PREFIX") or "ts")
    parser.add_argument("--file", action="store_true", help="a whole aclfile (default user off)")
    args = parser.parse_args(argv)
    password = os.environ.get("TWIN_REDIS_PASSWORD")
    if not password:
        print("set TWIN_REDIS_PASSWORD (never pass a password as an argument)", file=sys.stderr)
        return 2
    try:
        if args.file:
            print(redis_acl_file(args.user, password, args.prefix), end="")
        else:
            print(redis_acl_rule(args.user, password, args.prefix))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
