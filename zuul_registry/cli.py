"""zuul-registry [-c FILE] [-d] [serve | check-config | prune [--dry-run] |
report [--json]].

Without -c, the file named by $ZUUL_REGISTRY_CONFIG is read (a container
image sets it); without a command, the registry serves. So an image run as
``zuul-registry -d`` serves its mounted configuration, as zuul-jobs'
run-buildset-registry starts its image.
"""

import argparse
import logging
import os
import ssl
import sys

from zuul_registry import config as config_module

log = logging.getLogger('zuul_registry.cli')

CONFIG_ENV = 'ZUUL_REGISTRY_CONFIG'


def _parser():
    parser = argparse.ArgumentParser(
        prog='zuul-registry',
        usage='%(prog)s [-h] [-c FILE] [-d] [COMMAND ...]',
        description='A container image registry built for CI.')
    parser.add_argument(
        '-c', '--config', metavar='FILE',
        default=os.environ.get(CONFIG_ENV) or None,
        help='configuration file (default: $%s); without either, serve '
             'runs on an embedded default (plain HTTP on 127.0.0.1:5000, '
             'anonymous push and pull, storage in ./zuul-registry-data)'
             % CONFIG_ENV)
    parser.add_argument('-d', '--debug', action='store_true',
                        help='debug logging, including every request')
    commands = parser.add_subparsers(
        dest='command', metavar='COMMAND', title='commands',
        prog='zuul-registry [-c FILE] [-d]',
        description='default: serve')
    commands.add_parser('serve', help='run the registry')
    commands.add_parser('check-config',
                        help='validate the configuration file and exit')
    prune_parser = commands.add_parser(
        'prune', help='remove expired manifests, blobs no manifest needs '
                      'and abandoned uploads')
    prune_parser.add_argument('--dry-run', action='store_true',
                              help='say what would be removed; remove '
                                   'nothing')
    report_parser = commands.add_parser(
        'report', help='list every manifest served, by which reference, '
                       'from where, first and last')
    report_parser.add_argument('--json', action='store_true',
                               help='one JSON list instead of a table')
    return parser


def _setup_logging(*, debug):
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    if not debug:
        logging.getLogger('aiohttp.access').setLevel(logging.WARNING)


def _load(path):
    try:
        return config_module.load_config(path)
    except config_module.ConfigError as e:
        sys.stderr.write('%s: invalid configuration:\n' % path)
        for problem in e.problems:
            sys.stderr.write('  %s\n' % problem)
        sys.exit(1)


def ssl_context(config):
    """A server context for TLS 1.2+, or None for plain HTTP.

    Every problem with the files ends the program with one line naming
    the file and the cause.
    """
    if not config.tls_cert:
        return None
    for kind, path in (('certificate', config.tls_cert),
                       ('key', config.tls_key)):
        try:
            with open(path, 'rb') as f:
                f.read(1)
        except OSError as e:
            raise SystemExit('cannot read TLS %s %s: %s'
                             % (kind, path, e.strerror or e))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as e:
        if 'KEY_VALUES_MISMATCH' in str(e):
            cause = 'the key does not match the certificate'
        else:
            cause = 'not a PEM certificate and matching private key (%s)' \
                % (e.reason or e)
        raise SystemExit('cannot use TLS certificate %s with key %s: %s'
                         % (config.tls_cert, config.tls_key, cause))
    except OSError as e:
        raise SystemExit('cannot read TLS certificate %s or key %s: %s'
                         % (config.tls_cert, config.tls_key,
                            e.strerror or e))
    return context


def listen_hosts(address):
    """What to bind: '::' means every address, IPv4 included.

    asyncio makes an IPv6 socket IPv6-only, so '::' alone would refuse
    IPv4 clients; bind the IPv4 wildcard beside it.
    """
    if address == '::':
        return ['0.0.0.0', '::']
    return address


def check_config(args):
    if not args.config:
        sys.exit('check-config needs -c FILE')
    config = _load(args.config)
    print('%s: OK: %s' % (args.config, config_module.describe(config)))


def serve(args):
    from aiohttp import web

    from zuul_registry import malloc, tls_reads, workers

    malloc.use_one_arena()   # before any thread; workers inherit it
    from zuul_registry.app import make_app
    from zuul_registry.drivers.base import DriverError

    if args.config:
        config = _load(args.config)
        log.info('Configuration %s: %s', args.config,
                 config_module.describe(config))
    else:
        config = config_module.default_config()
        log.info('No configuration file given; embedded default: %s',
                 config_module.describe(config))
    context = ssl_context(config)
    if context is not None:
        tls_reads.use_small_buffers()
    count = workers.worker_count(config.workers)
    if count > 1:
        sys.exit(workers.run(config, context, count))
    try:
        web.run_app(make_app(config), host=listen_hosts(config.address),
                    port=config.port,
                    ssl_context=context, print=None,
                    access_log=logging.getLogger('aiohttp.access'))
    except DriverError as e:
        sys.exit('cannot use the storage: %s' % e)
    except OSError as e:
        sys.exit('cannot listen on %s port %d: %s'
                 % (config.address, config.port, e.strerror or e))


def prune(args):
    import asyncio

    from zuul_registry import prune as prune_module
    from zuul_registry.app import make_driver

    config = _load(args.config) if args.config \
        else config_module.default_config()
    log.info('Pruning: %s', config_module.describe(config))

    async def run():
        driver = make_driver(config.storage)
        try:
            return await prune_module.prune(config, driver,
                                            dry_run=args.dry_run)
        finally:
            await driver.close()

    print(asyncio.run(run()))


def report(args):
    import asyncio
    import json

    from zuul_registry.app import make_driver
    from zuul_registry.storage import Storage
    from zuul_registry.storage.namespaces import Namespaces
    from zuul_registry.storage.provenance import format_report

    config = _load(args.config) if args.config \
        else config_module.default_config()

    async def run():
        driver = make_driver(config.storage)
        try:
            await driver.open()
            storage = Storage(driver, Namespaces(
                namespaced=config.namespaced,
                default_namespace=config.default_namespace))
            return await storage.provenance.report(storage.catalog)
        finally:
            await driver.close()

    entries = asyncio.run(run())
    if args.json:
        print(json.dumps(entries, indent=1))
    else:
        print('\n'.join(format_report(entries)))


def main(argv=None):
    args = _parser().parse_args(argv)
    _setup_logging(debug=args.debug)
    {None: serve, 'serve': serve, 'check-config': check_config,
     'prune': prune, 'report': report}[args.command](args)
