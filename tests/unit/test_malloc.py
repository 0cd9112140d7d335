"""The serving process asks glibc (Debian's C library) for one arena."""

import subprocess
import sys

_CHECK = '''
import sys
from zuul_registry import malloc
sys.exit(0 if malloc.use_one_arena() else 3)
'''


def _run(env):
    return subprocess.run([sys.executable, '-c', _CHECK], env=env).returncode


def test_one_arena_is_taken_unless_the_environment_chose():
    assert _run({'PATH': '/usr/bin:/bin'}) == 0
    assert _run({'PATH': '/usr/bin:/bin', 'MALLOC_ARENA_MAX': '4'}) == 3
