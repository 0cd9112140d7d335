"""A test stand-in for Zuul's zuul_return action.

Zuul's executor provides ``zuul_return``; outside Zuul it does not exist.
This one appends what it was given, as one JSON document per line, to the
file named by the ``ZUUL_RETURN_RECORD`` environment variable (on the
controller), so that tests can check what a role would hand to Zuul.

When ``ZUUL_JOBDIR`` is set (or the task gives ``path``), it also keeps the
result data file as Zuul's executor does: ``$ZUUL_JOBDIR/work/results.json``,
one JSON object ``{"data": {...}, "secret_data": {...}}`` into which each
call is merged (mappings recursively, ``zuul.artifacts`` and
``zuul.warnings`` appended), replaced atomically. A later playbook of the
same job finds it at ``zuul.executor.result_data_file``, as under Zuul.
"""

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

LISTS = ('artifacts', 'warnings')


def merge(new, old):
    """Merge ``new`` into ``old`` as the executor does; return ``old``."""
    lists = {key: (old.get('zuul', {}).get(key) or [])
             + (new.get('zuul', {}).get(key) or []) for key in LISTS}

    def merge_dicts(a, b):
        for key, value in a.items():
            if isinstance(value, dict) and isinstance(b.get(key), dict):
                merge_dicts(value, b[key])
            else:
                b[key] = value

    merge_dicts(new, old)
    for key, value in lists.items():
        if value:
            old.setdefault('zuul', {})[key] = value
    return old


def update_result_data_file(path, data, secret_data):
    try:
        with open(path) as f:
            current = json.load(f)
    except FileNotFoundError:
        current = {}
    current.setdefault('data', {})
    current.setdefault('secret_data', {})
    merge(data or {}, current['data'])
    merge(secret_data or {}, current['secret_data'])
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(dir=directory)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(current, f)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class ActionModule(ActionBase):

    _VALID_ARGS = frozenset(('data', 'secret_data', 'file', 'path'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        record = os.environ.get('ZUUL_RETURN_RECORD')
        if not record:
            raise AnsibleActionFail('ZUUL_RETURN_RECORD is not set')
        entry = {key: self._task.args[key]
                 for key in ('data', 'secret_data')
                 if key in self._task.args}
        with open(record, 'a') as f:
            f.write(json.dumps(entry, sort_keys=True) + '\n')
        path = self._task.args.get('path')
        if not path and os.environ.get('ZUUL_JOBDIR'):
            path = os.path.join(os.environ['ZUUL_JOBDIR'], 'work',
                                'results.json')
        if path:
            update_result_data_file(path, entry.get('data'),
                                    entry.get('secret_data'))
        result['changed'] = False
        return result
