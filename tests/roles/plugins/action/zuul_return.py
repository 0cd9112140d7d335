"""A test stand-in for Zuul's zuul_return action.

Zuul's executor provides ``zuul_return``; outside Zuul it does not exist.
This one appends what it was given, as one JSON document per line, to the
file named by the ``ZUUL_RETURN_RECORD`` environment variable (on the
controller), so that tests can check what a role would hand to Zuul.
"""

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


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
        result['changed'] = False
        return result
