"""Passwords: the one place that makes and checks password hashes, and the password policy.

New hashes are argon2id (argon2-cffi, its default parameters: RFC 9106's low-memory profile, 64 MiB, 3 passes).
Hashes made before (werkzeug's ``scrypt:`` / ``pbkdf2:``) are still checked; :func:`needs_rehash` tells the login to
replace them (and argon2 hashes with other parameters) once the user has given the right password.

``BANGBAN_ARGON2_TESTING=1`` (the test suite only, never a deployment) uses argon2's cheapest parameters, so that the
hundreds of databases the tests create do not each cost a tenth of a second per hash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash

from .config import ints_from_env
from .errors import InvalidInput

COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
MAX_LENGTH = 128          # the login reads at most this many characters of a password


@lru_cache(maxsize=2)
def _hasher(testing: bool) -> PasswordHasher:
    return PasswordHasher.from_parameters(profiles.CHEAPEST) if testing else PasswordHasher()


def hasher() -> PasswordHasher:
    return _hasher(os.environ.get("BANGBAN_ARGON2_TESTING") == "1")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its own random salt)."""
    return hasher().hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (argon2, or werkzeug's scrypt/pbkdf2 of before)."""
    if not stored_hash:
        return False
    if stored_hash.startswith("$argon2"):
        try:
            return hasher().verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    try:
        return check_password_hash(stored_hash, password)
    except (ValueError, TypeError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """A hash that is not argon2id with the current parameters: replaced at the next successful login."""
    if not stored_hash.startswith("$argon2id$"):
        return True
    try:
        return hasher().check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("bangban-no-such-account")


def waste_a_check(password: str) -> None:
    """Spend the time of a real check (an unknown account answers as slowly as a wrong password)."""
    check_password(_dummy_hash(), password)


# ---- the policy for a new password ------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyLimits:
    password_min_length: int = 8     # BANGBAN_PASSWORD_MIN_LENGTH


def min_length() -> int:
    return ints_from_env(PolicyLimits, "BANGBAN_").password_min_length


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 1,000 most common passwords (``engine/data/common_passwords.txt``), compared without regard to case."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why ``password`` may not be chosen (Chinese, for the user), or ``None`` when it may."""
    password = password or ""
    shortest = min_length()
    if len(password) < shortest:
        return f"密码至少需要 {shortest} 个字符"
    if len(password) > MAX_LENGTH:
        return f"密码不能超过 {MAX_LENGTH} 个字符"
    if not password.isprintable():
        return "密码不能包含换行、制表符等控制字符"
    if password.strip() != password:
        return "密码的开头和结尾不能是空格"
    if username and password.lower() == username.strip().lower():
        return "密码不能与登录名相同"
    if password.lower() in common_passwords():
        return "这个密码太常见，容易被猜中，请换一个"
    return None


def check_password_policy(password: str, username: str | None = None) -> None:
    """Refuse (422, with a Chinese message) a password that breaks the policy: shorter than
    ``BANGBAN_PASSWORD_MIN_LENGTH`` (default 8) characters, longer than 128, control characters, equal to the login,
    or one of the 1,000 most common passwords."""
    problem = password_problem(password, username)
    if problem:
        raise InvalidInput(problem)
