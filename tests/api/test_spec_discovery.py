"""Content discovery: tags/list and _catalog, with pagination."""

import json

import pytest

from zuul_registry import config as config_module
from zuul_registry.api import pagination
from zuul_registry.app import make_app
from zuul_registry.drivers.memory import MemoryDriver
from tests.api.helpers import (
    OCI_MANIFEST, assert_error, basic_auth, make_config, push_blob,
    push_image)

SECRET = 'discovery-test-secret-0123456789abcdef'
WRITER = config_module.User(name='writer', password='w-pass',
                            access='write')
READER = config_module.User(name='reader', password='r-pass',
                            access='read')


def basic(user):
    return {'Authorization': basic_auth(user.name, user.password)}


async def tag_all(client, name, tags):
    """Push one image and tag it with every name in `tags`."""
    _, body = await push_image(client, name, tags[0])
    for tag in tags[1:]:
        response = await client.put(
            '/v2/%s/manifests/%s' % (name, tag), data=body,
            headers={'Content-Type': OCI_MANIFEST})
        assert response.status == 201


async def get_json(client, path, **kwargs):
    response = await client.get(path, **kwargs)
    assert response.status == 200, await response.text()
    return response, await response.json()


async def follow(client, path):
    """Every page, following Link headers; (pages, all entries)."""
    pages, entries = 0, []
    while path:
        response, body = await get_json(client, path)
        entries += body.get('tags', body.get('repositories'))
        pages += 1
        link = response.headers.get('Link')
        path = link and link.split(';')[0].strip('<>')
        assert link is None or link.endswith('; rel="next"')
    return pages, entries


async def test_tags_are_in_case_insensitive_lexical_order(client):
    await tag_all(client, 'org/img', ['b', 'C', 'a', 'B', 'v10', 'v9'])
    _, body = await get_json(client, '/v2/org/img/tags/list')
    assert body == {'name': 'org/img',
                    'tags': ['a', 'B', 'b', 'C', 'v10', 'v9']}


async def test_tags_n_returns_exactly_n_and_a_link_to_the_rest(client):
    await tag_all(client, 'org/img', ['t%d' % i for i in range(5)])
    response, body = await get_json(client, '/v2/org/img/tags/list?n=2')
    assert body['tags'] == ['t0', 't1']
    assert response.headers['Link'] == \
        '</v2/org/img/tags/list?n=2&last=t1>; rel="next"'
    pages, tags = await follow(client, '/v2/org/img/tags/list?n=2')
    assert (pages, tags) == (3, ['t%d' % i for i in range(5)])


async def test_tags_n_zero_is_empty_and_has_no_link(client):
    await tag_all(client, 'org/img', ['a', 'b'])
    response, body = await get_json(client, '/v2/org/img/tags/list?n=0')
    assert body['tags'] == []
    assert 'Link' not in response.headers


async def test_tags_last_starts_after_the_given_tag(client):
    await tag_all(client, 'org/img', ['a', 'b', 'c', 'd'])
    response, body = await get_json(client,
                                    '/v2/org/img/tags/list?last=b')
    assert body['tags'] == ['c', 'd']
    assert 'Link' not in response.headers
    # `last` need not be an existing tag.
    _, body = await get_json(client, '/v2/org/img/tags/list?n=1&last=bb')
    assert body['tags'] == ['c']


async def test_tags_fewer_than_n_only_at_the_end(client):
    await tag_all(client, 'org/img', ['a', 'b', 'c'])
    response, body = await get_json(client,
                                    '/v2/org/img/tags/list?n=3')
    assert body['tags'] == ['a', 'b', 'c']
    assert 'Link' not in response.headers
    _, body = await get_json(client, '/v2/org/img/tags/list?n=10&last=a')
    assert body['tags'] == ['b', 'c']


async def test_tags_without_n_are_paged_by_the_server(client, monkeypatch):
    monkeypatch.setattr(pagination, 'DEFAULT_PAGE_SIZE', 2)
    await tag_all(client, 'org/img', ['a', 'b', 'c', 'd', 'e'])
    response, body = await get_json(client, '/v2/org/img/tags/list')
    assert body['tags'] == ['a', 'b']
    assert response.headers['Link'] == \
        '</v2/org/img/tags/list?n=2&last=b>; rel="next"'
    assert await follow(client, '/v2/org/img/tags/list') == \
        (3, ['a', 'b', 'c', 'd', 'e'])


async def test_digests_are_never_listed_as_tags(client):
    digest, body = await push_image(client, 'org/img', 'v1')
    response = await client.put('/v2/org/img/manifests/%s' % digest,
                                data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
    _, body = await get_json(client, '/v2/org/img/tags/list')
    assert body['tags'] == ['v1']


@pytest.mark.parametrize('n', ['x', '-1', '1.5'])
async def test_invalid_n_is_400(client, n):
    await tag_all(client, 'org/img', ['a'])
    for path in ('/v2/org/img/tags/list?n=', '/v2/_catalog?n='):
        response = await client.get(path + n)
        await assert_error(response, 400, 'UNSUPPORTED')


async def test_catalog_lists_every_repository_in_order(client):
    for name in ('org/img', 'org', 'a/b/c', 'zeta', 'org/img/sub'):
        await push_blob(client, name, b'x')
    await push_image(client, 'tagged/only', 'v1')
    _, body = await get_json(client, '/v2/_catalog')
    assert body == {'repositories': ['a/b/c', 'org', 'org/img',
                                     'org/img/sub', 'tagged/only', 'zeta']}


async def test_catalog_of_an_empty_registry_is_empty(client):
    _, body = await get_json(client, '/v2/_catalog')
    assert body == {'repositories': []}


async def test_catalog_pagination_with_n_last_and_link(client):
    for name in ('r1', 'r2', 'r3', 'r4', 'r5'):
        await push_blob(client, name, b'x')
    response, body = await get_json(client, '/v2/_catalog?n=2')
    assert body['repositories'] == ['r1', 'r2']
    assert response.headers['Link'] == \
        '</v2/_catalog?n=2&last=r2>; rel="next"'
    assert await follow(client, '/v2/_catalog?n=2') == \
        (3, ['r1', 'r2', 'r3', 'r4', 'r5'])
    response, body = await get_json(client, '/v2/_catalog?n=0')
    assert body['repositories'] == []
    assert 'Link' not in response.headers


async def test_catalog_names_carry_their_namespace(make_client):
    client = await make_client(namespaced=True)
    await push_blob(client, 'library/alpine', b'x')
    await push_blob(client, 'quay.io/org/img', b'x')
    await push_blob(client, 'localhost:5000/img', b'x')
    response, body = await get_json(client, '/v2/_catalog?n=2')
    assert body['repositories'] == ['docker.io/library/alpine',
                                    'localhost:5000/img']
    # The Link header escapes what the query needs escaped.
    assert response.headers['Link'] == (
        '</v2/_catalog?n=2&last=localhost%3A5000%2Fimg>; rel="next"')
    assert await follow(client, '/v2/_catalog?n=2') == (2, [
        'docker.io/library/alpine', 'localhost:5000/img',
        'quay.io/org/img'])
    # Every listed name reaches its repository.
    for name in ('docker.io/library/alpine', 'quay.io/org/img'):
        response = await client.get('/v2/%s/tags/list' % name)
        assert response.status == 200


async def test_catalog_over_the_memory_driver(aiohttp_client, tmp_path):
    client = await aiohttp_client(make_app(
        make_config(tmp_path, namespaced=True), driver=MemoryDriver()))
    for name in ('quay.io/org', 'quay.io/org/img', 'library/alpine'):
        await push_blob(client, name, b'x')
    _, body = await get_json(client, '/v2/_catalog')
    assert body['repositories'] == ['docker.io/library/alpine',
                                    'quay.io/org', 'quay.io/org/img']


@pytest.fixture
async def secured(make_client):
    client = await make_client(users=(WRITER, READER), secret=SECRET)
    for name in ('org/a', 'org/b'):
        await push_blob(client, name, b'x', headers=basic(WRITER))
    return client


async def test_catalog_refuses_anonymous_clients_without_pull(secured):
    response = await secured.get('/v2/_catalog')
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert response.headers['WWW-Authenticate'].startswith('Bearer realm=')


async def test_catalog_lists_everything_to_a_user(secured):
    for user in (READER, WRITER):
        _, body = await get_json(secured, '/v2/_catalog',
                                 headers=basic(user))
        assert body['repositories'] == ['org/a', 'org/b']


async def test_catalog_lists_only_what_a_token_may_pull(secured):
    response = await secured.get('/auth/token', params={
        'service': 'zuul-registry', 'scope': 'repository:org/b:pull'},
        headers=basic(READER))
    token = (await response.json())['token']
    _, body = await get_json(secured, '/v2/_catalog', headers={
        'Authorization': 'Bearer ' + token})
    assert body['repositories'] == ['org/b']


async def test_catalog_is_open_when_anonymous_pull_is(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET)
    await push_blob(client, 'org/a', b'x', headers=basic(WRITER))
    _, body = await get_json(client, '/v2/_catalog')
    assert json.dumps(body) == '{"repositories": ["org/a"]}'
