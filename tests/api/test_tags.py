"""GET /v2/<name>/tags/list."""

from tests.api.helpers import assert_error, push_blob, push_image


async def test_tags_list_names_every_tag_in_lexical_order(client):
    for tag in ('v2', 'latest', 'v10', 'A'):
        await push_image(client, 'org/img', tag)
    response = await client.get('/v2/org/img/tags/list')
    assert response.status == 200
    assert await response.json() == {'name': 'org/img',
                                     'tags': ['A', 'latest', 'v10', 'v2']}


async def test_tags_list_of_unknown_repository_is_name_unknown(client):
    response = await client.get('/v2/org/nothing/tags/list')
    await assert_error(response, 404, 'NAME_UNKNOWN')


async def test_tags_list_of_repository_without_tags_is_empty(client):
    await push_blob(client, 'org/img', b'just a blob')
    response = await client.get('/v2/org/img/tags/list')
    assert response.status == 200
    assert (await response.json())['tags'] == []


async def test_tags_list_pagination(client):
    for tag in ('a', 'b', 'c'):
        await push_image(client, 'org/img', tag)
    response = await client.get('/v2/org/img/tags/list?n=2')
    assert (await response.json())['tags'] == ['a', 'b']
    assert response.headers['Link'] == \
        '</v2/org/img/tags/list?n=2&last=b>; rel="next"'
    response = await client.get('/v2/org/img/tags/list?n=2&last=b')
    assert (await response.json())['tags'] == ['c']
    assert 'Link' not in response.headers
    response = await client.get('/v2/org/img/tags/list?n=0')
    assert (await response.json())['tags'] == []
