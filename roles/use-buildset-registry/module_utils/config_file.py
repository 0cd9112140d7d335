# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Read a client configuration file; replace it atomically if it changed."""

from __future__ import annotations

import os
import tempfile


def read_text(path):
    """The file's text, or None if it does not exist."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except FileNotFoundError:
        return None


def write_text(module, path, text, *, mode, dir_mode=0o755):
    """Replace ``path`` with ``text``.

    A new file gets ``mode`` (and missing parent directories ``dir_mode``);
    an existing one keeps its owner, group and mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=dir_mode)
    fd, temp = tempfile.mkstemp(dir=directory, prefix='.%s.' %
                                os.path.basename(path))
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        if os.path.exists(path):
            module.atomic_move(temp, path)
        else:
            os.chmod(temp, mode)
            os.rename(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def finish(module, path, before, after, *, mode, dir_mode=0o755, **result):
    """Write ``after`` unless it equals ``before``; exit with the result
    (and a diff when asked for)."""
    changed = before != after
    if changed and not module.check_mode:
        write_text(module, path, after, mode=mode, dir_mode=dir_mode)
    if module._diff:
        result['diff'] = dict(before=before or '', after=after,
                              before_header=path, after_header=path)
    module.exit_json(changed=changed, path=path, **result)
