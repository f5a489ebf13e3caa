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
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["REDIS_COMMANDS", "redis_acl_file", "redis_acl_rule"]

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
