"""The pull-through table and summary (see bench/pullthrough.py)."""

import os
import statistics

from bench.report import MIB, _number

PULLTHROUGH_ROWS = (
    ('direct', 'direct pull from the upstream'),
    ('first', 'first pull through the mirror'),
    ('cached', 'cached pull through the mirror'),
    ('direct_many', '%d direct pulls at once'),
    ('first_many', '%d first pulls at once, mirror'),
)
CPU_FIELDS = ('client_cpu', 'mirror_cpu', 'upstream_cpu', 'other_cpu')


def summary(outcome):
    """Medians per kind, ratios to the direct pull and the issue's targets
    (reported, never asserted)."""
    kinds = {}
    for kind, _ in PULLTHROUGH_ROWS:
        runs = [r[kind] for r in outcome['runs'] if kind in r]
        if not runs:
            continue
        found = {
            'seconds': statistics.median(r['seconds'] for r in runs),
            'mib_s': statistics.median(r['bytes'] / r['seconds'] / MIB
                                       for r in runs),
            'ttfb_ms': statistics.median(r['ttfb'] * 1000 for r in runs),
            'ttfb_max_ms': statistics.median(r['ttfb_max'] * 1000
                                             for r in runs),
            'cpu_percent': {f: statistics.median(
                100 * r[f] / r['seconds'] for r in runs)
                for f in CPU_FIELDS},
        }
        if 'manifest' in runs[0]:
            found['manifest_ms'] = statistics.median(
                r['manifest'] * 1000 for r in runs)
        if 'mirror_rss_mib' in runs[0]:
            found['mirror_peak_rss_mib'] = max(r['mirror_rss_mib']
                                               for r in runs)
            found['fills'] = [r['fills'] for r in runs]
        kinds[kind] = found
    ratios, targets = {}, []
    direct = kinds.get('direct')

    def ratio(name, value, target=None, text=None, met=None):
        ratios[name] = value
        if target:
            targets.append({'name': name, 'text': text, 'value': value,
                            'target': target, 'met': met})
    if direct and 'first' in kinds:
        first = kinds['first']
        value = first['mib_s'] / direct['mib_s']
        ratio('first_throughput', value, '>= 0.9x',
              'first pull, MiB/s x direct', value >= 0.9)
        value = first['ttfb_ms'] - direct['ttfb_ms']
        ratio('first_ttfb_delta_ms', value, '<= +100 ms',
              'first pull, TTFB - direct TTFB', value <= 100)
    if direct and 'cached' in kinds:
        ratio('cached_throughput', kinds['cached']['mib_s'] /
              direct['mib_s'])
    if direct and 'first_many' in kinds:
        value = kinds['first_many']['seconds'] / direct['seconds']
        ratio('first_many_time', value, '<= 1.5x',
              'many first pulls, time x one direct pull', value <= 1.5)
    if 'direct_many' in kinds and 'first_many' in kinds:
        ratio('first_many_vs_direct_many_time',
              kinds['first_many']['seconds'] /
              kinds['direct_many']['seconds'])
    return {'kinds': kinds, 'ratios': ratios, 'targets': targets,
            'runs': outcome['runs'], 'load': outcome['load'],
            'error': outcome['error']}


def table(summary, settings, *, verbose=False):
    kinds, clients = summary['kinds'], settings['pullthrough_clients']
    direct = kinds.get('direct')
    headers = ('time s', 'MiB/s', 'x direct MiB/s', 'x direct time',
               'TTFB ms', 'mirror RSS', 'fills')
    titles = {k: t % clients if '%d' in t else t
              for k, t in PULLTHROUGH_ROWS}
    first = max(len(t) for t in titles.values())
    lines = ['  '.join(['pull-through'.ljust(first)] + [
        h.rjust(max(len(h), 7)) for h in headers])]
    for kind, _ in PULLTHROUGH_ROWS:
        if kind not in kinds:
            continue
        k = kinds[kind]
        many = kind.endswith('_many')
        cells = [
            '%.3f' % k['seconds'], _number(k['mib_s']),
            '%.2fx' % (k['mib_s'] / direct['mib_s'])
            if direct and not many else '-',
            '%.2fx' % (k['seconds'] / direct['seconds']) if direct else '-',
            '%.1f' % (k['ttfb_max_ms'] if many else k['ttfb_ms']),
            '%.0f MiB' % k['mirror_peak_rss_mib']
            if 'mirror_peak_rss_mib' in k else '-',
            ','.join(map(str, k['fills'])) if 'fills' in k else '-']
        lines.append('  '.join([titles[kind].ljust(first)] + [
            c.rjust(max(len(h), 7)) for c, h in zip(cells, headers)]))
    lines.append('')
    for target in summary['targets']:
        value = target['value']
        shown = ('%+.1f ms' % value if target['name'].endswith('_ms')
                 else '%.2fx' % value)
        lines.append('target %-42s %-10s %9s  %s' % (
            target['text'] + ':', target['target'], shown,
            'met' if target['met'] else 'MISSED'))
    if 'first_many_vs_direct_many_time' in summary['ratios']:
        lines.append('%d first pulls through the mirror take %.2fx the time '
                     'of %d direct pulls at once.' % (
                         clients, summary['ratios'][
                             'first_many_vs_direct_many_time'], clients))
    s = settings
    load = summary['load']
    lines.append('median of %d run%s; %d MiB blob over %s; each first pull '
                 'through a fresh mirror process on empty storage%s.' % (
                     s['repeat'], '' if s['repeat'] == 1 else 's',
                     s['blob_mib'], 'TLS' if s['tls'] else 'plain HTTP',
                     '' if s.get('pullthrough_workers') is None else
                     ' (workers: %s)' % s['pullthrough_workers']))
    lines.append('TTFB: to the first body byte from connecting (%d at '
                 'once: the slowest client); mirror RSS: VmHWM, largest '
                 'of the runs; fills: upstream blob fetches, per run.'
                 % clients)
    if 'first' in kinds and 'manifest_ms' in kinds['first']:
        lines.append('Before the first pulls the image manifest was GET by '
                     'tag through each fresh mirror (untimed there; it '
                     'took %.0f ms).' % kinds['first']['manifest_ms'])
    lines.append('load average (1 min) before/after: %s.' % '/'.join(
        '%.2f' % v for v in load))
    if verbose:
        lines.append('CPU, %% of one core, median (client/mirror/upstream/'
                     'others; %d cores = %d):' % (
                         os.cpu_count(), 100 * os.cpu_count()))
        for kind, _ in PULLTHROUGH_ROWS:
            if kind in kinds:
                lines.append('  %s  %s' % (titles[kind].ljust(first), '/'.join(
                    '%.0f' % kinds[kind]['cpu_percent'][f]
                    for f in CPU_FIELDS)))
    return '\n'.join(lines)
