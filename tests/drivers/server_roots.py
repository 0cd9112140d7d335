"""Temporary roots of the test storage servers (Ceph, SeaweedFS, Swift),
named after the test process that made them, so that the next run
removes the roots of a run that died before its atexit cleanup.

Most of them live in /dev/shm, in memory: a pytest worker killed during
its cleanup (xdist gives workers a few seconds to exit) used to leave
about 100 MiB there per run, for as long as the machine was up.
"""

import os
import re
import shutil
import tempfile

# zr-KIND-PID-RANDOM
_NAME = re.compile(r'zr-[a-z0-9]+-(\d+)-')


def make(kind, parent=None):
    """A new directory zr-KIND-PID-... under `parent` (None: the default
    temporary directory), after removing those of dead processes."""
    parent = parent or tempfile.gettempdir()
    sweep(parent)
    return tempfile.mkdtemp(prefix='zr-%s-%d-' % (kind, os.getpid()),
                            dir=parent)


def sweep(parent):
    """Remove the roots under `parent` whose process is gone; the names
    of removed roots."""
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            removed.append(name)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True     # someone else's process
    return True
