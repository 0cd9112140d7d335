"""Checking passwords (zuul_registry/auth.py): plain and bcrypt users.

bcrypt really runs here; a spy only records which hashes it checks.
"""

import statistics
import time

import bcrypt
import pytest

from zuul_registry import auth as auth_module
from zuul_registry.config import Config, StorageConfig, User
from zuul_registry.storage.namespaces import Namespaces

SECRET = 'the-configured-secret-value-0123456789'


def hashed(password, cost=4):
    return bcrypt.hashpw(password.encode(),
                         bcrypt.gensalt(rounds=cost)).decode()


@pytest.fixture
def make_auth():
    made = []

    def make(*users):
        config = Config(storage=StorageConfig(driver='filesystem',
                                              root='/x'),
                        users=users, secret=SECRET)
        made.append(auth_module.Auth(config, Namespaces(
            namespaced=False, default_namespace='docker.io')))
        return made[-1]

    yield make
    for auth in made:
        auth.close()


def hash_user(name, password, cost=4):
    return User(name=name, password=None, access='write',
                password_hash=hashed(password, cost))


PLAIN = User(name='plain', password='plain-pass', access='read')


@pytest.fixture
def checked(monkeypatch):
    """The hashes bcrypt checks passwords against, in order."""
    seen = []
    checkpw = bcrypt.checkpw

    def spy(password, hashed_password):
        seen.append(hashed_password.decode())
        return checkpw(password, hashed_password)

    monkeypatch.setattr(bcrypt, 'checkpw', spy)
    return seen


async def test_a_password_bcrypt_cannot_take_is_refused_not_an_error(
        make_auth):
    # bcrypt reads at most 72 bytes, and bcrypt >= 5 raises beyond that.
    auth = make_auth(hash_user('hasher', 'h' * 72))
    for password in ['h' * 73, 'h' * 72 + 'x', 'é' * 40, 'x' * 10000]:
        assert await auth.user_actions('hasher', password) is None
        assert await auth.user_actions('nobody', password) is None
    assert await auth.user_actions('hasher', 'h' * 72) == \
        auth_module.ALL_ACTIONS


async def test_a_hash_bcrypt_refuses_matches_nothing(make_auth):
    # A User made without the config checks: bcrypt raises ValueError.
    user = User(name='bad', password=None, access='write',
                password_hash='$2b$99$' + 'a' * 53)
    auth = make_auth(user)
    assert await auth.user_actions('bad', 'anything') is None


async def test_a_long_plain_password_still_works(make_auth):
    user = User(name='long', password='p' * 200, access='write')
    auth = make_auth(user, hash_user('hasher', 'h'))
    assert await auth.user_actions('long', 'p' * 200) == \
        auth_module.ALL_ACTIONS
    assert await auth.user_actions('long', 'p' * 199) is None


async def test_an_unknown_name_costs_a_bcrypt_check_like_a_known_one(
        make_auth, checked):
    user = hash_user('hasher', 'right', cost=5)
    auth = make_auth(user, PLAIN)
    assert await auth.user_actions('hasher', 'wrong') is None
    assert checked == [user.password_hash]
    checked.clear()
    assert await auth.user_actions('nobody', 'wrong') is None
    [dummy] = checked
    assert dummy != user.password_hash
    assert dummy.startswith('$2b$05$')     # the configured cost
    checked.clear()
    # A wrong password of a plain user costs as much as well.
    assert await auth.user_actions('plain', 'wrong') is None
    assert checked == [dummy]


async def test_without_bcrypt_users_nothing_runs_bcrypt(make_auth,
                                                        checked):
    auth = make_auth(PLAIN)
    assert await auth.user_actions('nobody', 'wrong') is None
    assert await auth.user_actions('plain', 'wrong') is None
    assert await auth.user_actions('plain', 'plain-pass') is not None
    assert checked == []


async def test_timing_does_not_tell_whether_a_name_exists(make_auth):
    auth = make_auth(hash_user('hasher', 'right', cost=8))

    async def seconds(name):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            assert await auth.user_actions(name, 'wrong') is None
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = await seconds('hasher'), await seconds('nobody')
    # Loose bounds: without the dummy check unknown is 1000 times faster.
    assert unknown > known / 3, (known, unknown)
    assert known > unknown / 3, (known, unknown)


async def test_verified_passwords_are_remembered(make_auth, checked):
    auth = make_auth(hash_user('hasher', 'right'))
    for _ in range(3):
        assert await auth.user_actions('hasher', 'right') is not None
    assert len(checked) == 1
