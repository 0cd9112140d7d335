"""The WWW-Authenticate parser of the upstream client (RFC 9110 11.6.1)."""

import pytest

from zuul_registry.upstream import challenge
from zuul_registry.upstream.challenge import Challenge, ChallengeError


def test_docker_hub_bearer_challenge():
    value = ('Bearer realm="https://auth.docker.io/token",'
             'service="registry.docker.io",'
             'scope="repository:library/alpine:pull"')
    assert challenge.parse(value) == [Challenge('bearer', {
        'realm': 'https://auth.docker.io/token',
        'service': 'registry.docker.io',
        'scope': 'repository:library/alpine:pull'})]


def test_scheme_and_parameter_names_are_case_insensitive():
    [parsed] = challenge.parse('BEARER Realm="r",SERVICE="s"')
    assert parsed.scheme == 'bearer'
    assert parsed.params == {'realm': 'r', 'service': 's'}
    assert parsed.realm == 'r'


def test_quoted_string_may_hold_commas_escapes_and_equals():
    [parsed] = challenge.parse(
        r'Bearer realm="https://a/t?x=1,y=2",scope="repository:a/b:pull,push"'
        r',error_description="say \"no\", \\ twice"')
    assert parsed.params == {
        'realm': 'https://a/t?x=1,y=2',
        'scope': 'repository:a/b:pull,push',
        'error_description': 'say "no", \\ twice'}


def test_white_space_around_separators_and_equals():
    [parsed] = challenge.parse(
        'Bearer   realm = "r" ,\tservice= "s" , , scope ="x"  ')
    assert parsed.params == {'realm': 'r', 'service': 's', 'scope': 'x'}


def test_several_challenges_in_one_value():
    parsed = challenge.parse('Bearer realm="a,b", error="invalid_token", '
                             'Basic realm="registry"')
    assert [c.scheme for c in parsed] == ['bearer', 'basic']
    assert parsed[0].params == {'realm': 'a,b', 'error': 'invalid_token'}
    assert parsed[1].params == {'realm': 'registry'}


def test_several_header_values():
    parsed = challenge.parse_all(['Basic realm="x"',
                                  'Bearer realm="y",service="s"'])
    assert challenge.find(parsed, 'BEARER').params == {'realm': 'y',
                                                       'service': 's'}
    assert challenge.find(parsed, 'basic').realm == 'x'
    assert challenge.find(parsed, 'digest') is None


def test_unquoted_values_including_urls():
    [parsed] = challenge.parse('Bearer realm=https://auth.example/token,'
                               'service=registry.example')
    assert parsed.params == {'realm': 'https://auth.example/token',
                             'service': 'registry.example'}


def test_scheme_without_parameters():
    assert challenge.parse('Basic') == [Challenge('basic', {})]
    assert challenge.parse('Negotiate, Basic realm="x"') == [
        Challenge('negotiate', {}), Challenge('basic', {'realm': 'x'})]


def test_token68():
    assert challenge.parse('Negotiate YWJj==, Basic realm="x"') == [
        Challenge('negotiate', {}, 'YWJj=='),
        Challenge('basic', {'realm': 'x'})]
    assert challenge.parse('Newauth abc=') == [
        Challenge('newauth', {}, 'abc=')]


def test_empty_quoted_value():
    [parsed] = challenge.parse('Bearer realm="",service="s"')
    assert parsed.params == {'realm': '', 'service': 's'}


def test_first_occurrence_of_a_parameter_wins():
    [parsed] = challenge.parse('Bearer realm="first",realm="second"')
    assert parsed.realm == 'first'


def test_empty_header():
    assert challenge.parse('') == []
    assert challenge.parse(' , ') == []


@pytest.mark.parametrize('value', [
    'Bearer realm="unterminated',
    'Bearer realm="a" service="b"',
    '"quoted" realm="x"',
    'Bearer realm="a",service=,scope="x"',
    'Bearer ="x"',
])
def test_malformed_values_raise(value):
    with pytest.raises(ChallengeError):
        challenge.parse(value)


def test_challenge_error_is_a_value_error_and_bounded():
    with pytest.raises(ValueError) as raised:
        challenge.parse('Bearer realm="' + 'x' * 10000)
    assert len(str(raised.value)) < 400
