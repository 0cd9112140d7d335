# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Edit a TOML document as text, keeping every comment and entry.

A TOML library reads the document (what it means); this module finds
where things are in the text (table headers and ``key = value``
statements) so that an edit inserts, replaces or deletes only whole lines
and leaves everything else byte for byte as it was. Callers check the
result by reading it again and comparing it with what they meant.
"""

from __future__ import annotations

import json
import re

try:
    import tomllib as _toml_reader
except ImportError:  # Python < 3.11
    try:
        import tomli as _toml_reader
    except ImportError:
        try:
            import toml as _toml_reader
        except ImportError:
            _toml_reader = None

HAS_TOML = _toml_reader is not None
BARE_KEY = re.compile(r'[A-Za-z0-9_-]+')


class TomlEditError(Exception):
    pass


def loads(text):
    """Read TOML text into Python data."""
    if _toml_reader is None:
        raise TomlEditError('reading TOML needs Python 3.11 or newer, or '
                            'the tomli or toml package')
    try:
        return _toml_reader.loads(text)
    except Exception as error:
        raise TomlEditError('not valid TOML: %s' % error) from None


def string(value):
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def array(values):
    return '[%s]' % ', '.join(string(value) for value in values)


def parse_key(text):
    """``a."b.c".d`` -> ('a', 'b.c', 'd'); None if it is not a key."""
    parts, pos, text = [], 0, text.strip()
    while True:
        while pos < len(text) and text[pos] in ' \t':
            pos += 1
        if pos >= len(text):
            return None
        if text[pos] == '"':
            end = pos + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == '\\' else 1
            if end >= len(text):
                return None
            parts.append(json.loads(text[pos:end + 1]))
            pos = end + 1
        elif text[pos] == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                return None
            parts.append(text[pos + 1:end])
            pos = end + 1
        else:
            match = BARE_KEY.match(text, pos)
            if not match:
                return None
            parts.append(match.group())
            pos = match.end()
        while pos < len(text) and text[pos] in ' \t':
            pos += 1
        if pos == len(text):
            return tuple(parts)
        if text[pos] != '.':
            return None
        pos += 1


class Line:
    """One line: ``kind`` is 'header', 'statement', 'continuation',
    'comment' or 'blank'; headers have ``array`` and ``name``, statements
    ``key``."""

    __slots__ = ('kind', 'array', 'name', 'key')

    def __init__(self, kind, *, array=False, name=None, key=None):
        self.kind, self.array, self.name, self.key = kind, array, name, key


def _scan(lines):
    """Classify every line, following strings, arrays and inline tables
    across lines so that nothing inside them is taken for a header."""
    result = []
    depth = 0
    multiline = None  # '"""' or "'''" while inside one
    for line in lines:
        stripped = line.strip()
        if multiline or depth:
            kind = 'continuation'
        elif not stripped:
            kind = 'blank'
        elif stripped.startswith('#'):
            kind = 'comment'
        elif stripped.startswith('['):
            result.append(_header(stripped))
            continue
        else:
            kind = 'statement'
        info = Line(kind)
        if kind == 'statement':
            info.key = parse_key(_key_text(stripped))
        result.append(info)
        depth, multiline = _follow(line, depth, multiline)
    return result


def _key_text(stripped):
    """The text before the ``=`` that is not inside quotes."""
    quote, index = None, 0
    while index < len(stripped):
        char = stripped[index]
        if quote:
            if char == '\\' and quote == '"':
                index += 1
            elif char == quote:
                quote = None
        elif char in '"\'':
            quote = char
        elif char == '=':
            return stripped[:index]
        index += 1
    return stripped


def _header(stripped):
    is_array = stripped.startswith('[[')
    opening = 2 if is_array else 1
    closing = ']]' if is_array else ']'
    # Find the closing bracket outside quotes; a comment may follow.
    quote, end = None, None
    for index in range(opening, len(stripped)):
        char = stripped[index]
        if quote:
            if char == quote:
                quote = None
        elif char in '"\'':
            quote = char
        elif stripped.startswith(closing, index):
            end = index
            break
    if end is None:
        raise TomlEditError('cannot read table header %r' % stripped)
    name = parse_key(stripped[opening:end])
    if name is None:
        raise TomlEditError('cannot read table header %r' % stripped)
    return Line('header', array=is_array, name=name)


def _follow(line, depth, multiline):
    """Bracket depth and open multi-line string after ``line``."""
    index = 0
    while index < len(line):
        if multiline:
            end = line.find(multiline, index)
            if end < 0:
                return depth, multiline
            index, multiline = end + 3, None
            continue
        char = line[index]
        if char == '#':
            break
        if line.startswith('"""', index) or line.startswith("'''", index):
            multiline = line[index:index + 3]
            index += 3
        elif char == '"':
            index += 1
            while index < len(line) and line[index] != '"':
                index += 2 if line[index] == '\\' else 1
            index += 1
        elif char == "'":
            end = line.find("'", index + 1)
            index = len(line) if end < 0 else end + 1
        else:
            if char in '[{':
                depth += 1
            elif char in ']}':
                depth = max(depth - 1, 0)
            index += 1
    return depth, multiline


class Document:
    """TOML text as lines, with the positions of headers and statements."""

    def __init__(self, text):
        if text and not text.endswith('\n'):
            text += '\n'
        self.lines = text.splitlines(keepends=True)
        self.info = _scan(self.lines)

    @property
    def text(self):
        return ''.join(self.lines)

    def _rescan(self):
        self.info = _scan(self.lines)

    def headers(self, name=None, *, array=None):
        """Indexes of header lines, optionally of one name and kind."""
        return [index for index, info in enumerate(self.info)
                if info.kind == 'header'
                and (name is None or info.name == tuple(name))
                and (array is None or info.array == array)]

    def block_end(self, header):
        """Index of the next header after ``header`` (or the end)."""
        for index in range(header + 1, len(self.lines)):
            if self.info[index].kind == 'header':
                return index
        return len(self.lines)

    def first_header(self):
        headers = self.headers()
        return headers[0] if headers else len(self.lines)

    def statement_span(self, start):
        end = start + 1
        while end < len(self.lines) and (
                self.info[end].kind == 'continuation'):
            end += 1
        return start, end

    def find_statement(self, start, end, key):
        """The (first, end) line span of ``key = ...`` in [start, end)."""
        for index in range(start, end):
            info = self.info[index]
            if info.kind == 'statement' and info.key == tuple(key):
                return self.statement_span(index)
        return None

    def content_end(self, start, end):
        """Just after the last statement (or the header) in [start, end):
        where new lines of that block go, before trailing comments and
        blank lines that belong to whatever follows."""
        last = start
        for index in range(start, end):
            if self.info[index].kind in ('header', 'statement',
                                         'continuation'):
                last = index + 1
        return last

    def leading_comments(self, index):
        """Index of the first comment line directly above ``index``."""
        while index > 0 and self.info[index - 1].kind == 'comment':
            index -= 1
        return index

    def insert(self, index, text):
        self.lines[index:index] = text.splitlines(keepends=True)
        self._rescan()

    def replace(self, start, end, text):
        self.lines[start:end] = text.splitlines(keepends=True)
        self._rescan()

    def append_block(self, text):
        """Append ``text`` after one blank line."""
        if self.lines and self.lines[-1].strip():
            self.lines.append('\n')
        self.insert(len(self.lines), text)
