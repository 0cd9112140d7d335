"""Parse the ``WWW-Authenticate`` challenges an upstream registry sends.

This is the client side: it reads what another registry asks of us.
(``zuul_registry.api.challenge`` is the server side, what we ask of our
clients.)

RFC 9110 (11.6.1) allows several challenges in one header value, and the
header several times::

    Bearer realm="https://auth.example.com/token",service="registry",
        scope="repository:library/alpine:pull", Basic realm="x"

A challenge is a scheme (case-insensitive) followed either by a token68
(``Negotiate abc==``) or by comma-separated ``name=value`` parameters,
where a value is a token or a quoted-string (which may hold commas,
``\\"`` and ``\\\\``).  Parameter names are case-insensitive.  For
robustness an unquoted value may be anything up to the next comma or
white space (some servers leave URLs unquoted).  Anything else raises
:class:`ChallengeError`.
"""

import dataclasses
import re
from typing import Dict, Optional

# RFC 9110 tchar.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_RE = re.compile(_TOKEN)
_PARAM_START_RE = re.compile(r'(%s)[ \t]*=[ \t]*(?!=)' % _TOKEN)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNQUOTED_RE = re.compile(r'[^\s,"]+')
_TOKEN68_RE = re.compile(r'[A-Za-z0-9._~+/-]+=*')
_ESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)
_WS_RE = re.compile(r'[ \t]*')


class ChallengeError(ValueError):
    """A WWW-Authenticate value that is not a list of challenges."""


@dataclasses.dataclass(frozen=True)
class Challenge:
    scheme: str                      # lower case: "bearer", "basic"
    params: Dict[str, str]           # names in lower case
    token68: Optional[str] = None

    @property
    def realm(self):
        return self.params.get('realm')


def parse(value):
    """The challenges of one header value, in order."""
    parser = _Parser(value)
    return parser.challenges()


def parse_all(values):
    """The challenges of every WWW-Authenticate header value."""
    challenges = []
    for value in values:
        challenges.extend(parse(value))
    return challenges


def find(challenges, scheme):
    """The first challenge of ``scheme`` (any case), or None."""
    scheme = scheme.lower()
    for challenge in challenges:
        if challenge.scheme == scheme:
            return challenge
    return None


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def fail(self, what):
        raise ChallengeError('%s at offset %d of %r'
                             % (what, self.pos, self.text[:200]))

    def skip(self, pattern=_WS_RE):
        self.pos = pattern.match(self.text, self.pos).end()

    def skip_separators(self):
        """White space and empty list elements (", ,")."""
        while True:
            self.skip()
            if self.at(','):
                self.pos += 1
            else:
                return

    def at(self, char):
        return self.text.startswith(char, self.pos)

    def done(self):
        return self.pos >= len(self.text)

    def challenges(self):
        result = []
        self.skip_separators()
        while not self.done():
            result.append(self.challenge())
            self.skip_separators()
        return result

    def challenge(self):
        match = _SCHEME_RE.match(self.text, self.pos)
        if not match:
            self.fail('expected an authentication scheme')
        scheme = match.group().lower()
        self.pos = match.end()
        if self.done() or self.at(','):
            return Challenge(scheme, {})
        if not self.at(' ') and not self.at('\t'):
            self.fail('expected white space after the scheme')
        self.skip()
        # A token68 stands alone up to the end or the next comma; a
        # parameter never does ("name=" needs a value after it).
        token68 = _TOKEN68_RE.match(self.text, self.pos)
        if token68:
            end = _WS_RE.match(self.text, token68.end()).end()
            if end == len(self.text) or self.text[end] == ',':
                self.pos = token68.end()
                return Challenge(scheme, {}, token68.group())
        if self.done() or self.at(','):
            return Challenge(scheme, {})
        if not _PARAM_START_RE.match(self.text, self.pos):
            self.fail('expected a parameter or a token68')
        return Challenge(scheme, self.params())

    def params(self):
        params = {}
        while True:
            match = _PARAM_START_RE.match(self.text, self.pos)
            if not match:
                return params
            name = match.group(1).lower()
            self.pos = match.end()
            value = self.value()
            # The first occurrence wins; a repeated name is a server bug.
            params.setdefault(name, value)
            # After a comma comes another parameter of this challenge or
            # the scheme of the next one: look ahead for "name=".
            self.skip()
            if self.done():
                return params
            if not self.at(','):
                self.fail('expected "," after a parameter')
            start = self.pos
            self.skip_separators()
            if not _PARAM_START_RE.match(self.text, self.pos):
                self.pos = start
                return params

    def value(self):
        match = _QUOTED_RE.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return _ESCAPE_RE.sub(r'\1', match.group(1))
        if self.at('"'):
            self.fail('unterminated quoted string')
        match = _UNQUOTED_RE.match(self.text, self.pos)
        if not match:
            self.fail('expected a parameter value')
        self.pos = match.end()
        return match.group()
