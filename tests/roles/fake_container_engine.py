"""A stand-in for docker/podman, for testing the role's container mode.

It understands only the commands run-buildset-registry uses, records each
call (one JSON list per line in $FAKE_ENGINE_DIR/calls.jsonl) and runs the
"image" as this checkout's zuul-registry on the host: the image's command
``zuul-registry ARGS`` becomes ``python -m zuul_registry ARGS``, and a
``--volume SRC:DST`` mount maps DST back to SRC.
"""

import json
import os
import signal
import subprocess
import sys
import time

STATE = os.environ.get('FAKE_ENGINE_DIR')


def record(argv):
    with open(os.path.join(STATE, 'calls.jsonl'), 'a') as f:
        f.write(json.dumps(argv) + '\n')


def parse_run(args):
    """(options, image, command) of ``run [options] IMAGE COMMAND...``."""
    options, volumes, index = {}, {}, 0
    while args[index].startswith('--'):
        option = args[index]
        if option in ('--rm', '--detach'):
            options[option] = True
            index += 1
        else:
            options[option] = args[index + 1]
            if option == '--volume':
                source, target = args[index + 1].split(':')[:2]
                volumes[target] = source
            index += 2
    image, command = args[index], args[index + 1:]
    assert command[0] == 'zuul-registry', command
    command = [volumes.get(arg, arg) for arg in command[1:]]
    return options, image, [sys.executable, '-m', 'zuul_registry'] + command


def state_path(name):
    return os.path.join(STATE, name + '.json')


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except OSError:
        return False


def start(name, command):
    log = open(os.path.join(STATE, name + '.log'), 'ab')
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL,
                               start_new_session=True)
    with open(state_path(name), 'w') as f:
        json.dump({'pid': process.pid, 'command': command}, f)


def stop(name):
    with open(state_path(name)) as f:
        pid = json.load(f)['pid']
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(150):
            if not alive(pid):
                break
            time.sleep(0.1)


def main(argv):
    record(argv)
    verb, args = argv[0], argv[1:]
    if verb == 'inspect':
        name = args[-1]
        if not os.path.exists(state_path(name)):
            sys.exit('Error: no such object: %s' % name)
        with open(state_path(name)) as f:
            print('true' if alive(json.load(f)['pid']) else 'false')
    elif verb == 'run':
        options, _, command = parse_run(args)
        if options.get('--rm'):
            sys.exit(subprocess.run(command).returncode)
        assert options['--network'] == 'host'
        start(options['--name'], command)
        print('0123456789ab')
    elif verb in ('start', 'restart'):
        name = args[-1]
        if not os.path.exists(state_path(name)):
            sys.exit('Error: no such container: %s' % name)
        stop(name)
        with open(state_path(name)) as f:
            start(name, json.load(f)['command'])
    elif verb in ('stop', 'rm'):
        stop(args[-1])
    else:
        sys.exit('fake engine: unknown command %s' % verb)


if __name__ == '__main__':
    main(sys.argv[1:])
