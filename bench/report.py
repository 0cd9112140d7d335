"""Turn samples into numbers, a table and a JSON document."""

import json
import statistics

MIB = 1 << 20

# (key, table header, divisor of Sample.rate); rates: higher is better
RATES = (
    ('push', 'push MiB/s', MIB),
    ('pull', 'pull MiB/s', MIB),
    ('head', 'HEAD req/s', 1),
    ('manifest', 'manifest GET/s', 1),
    ('small_push', 'small push/s', 1),
)
MEMORY = ('peak_rss', 'peak RSS MiB')      # lower is better


def result(subject):
    """What the report needs of one runner.Subject."""
    failed = [key for key, _, _ in RATES if not subject.can(key)]
    if subject.dead:
        failed.append(MEMORY[0])
    return {'title': subject.title, 'error': subject.error,
            'failed': failed, 'samples': subject.samples,
            'metrics': summarize(subject.samples, subject.peak_rss_kib)}


def summarize(samples, peak_rss_kib):
    """Metrics of one registry from its samples ({kind: [Sample]})."""
    metrics = {}
    for key, _, divisor in RATES:
        runs = [sample.rate / divisor for sample in samples.get(key, [])]
        if runs:
            metrics[key] = {'runs': runs, 'best': max(runs),
                            'median': statistics.median(runs)}
    if peak_rss_kib:
        value = peak_rss_kib / 1024
        metrics['peak_rss'] = {'runs': [value], 'best': value,
                               'median': value}
    transfer = [s.peak_rss_kib for kind in ('push', 'pull')
                for s in samples.get(kind, [])]
    if transfer:
        metrics['transfer_rss'] = {'max': max(transfer) / 1024}
    return metrics


def runs_detail(samples):
    """Every run with its time and CPU split, for the JSON file."""
    return {kind: [{'amount': s.amount, 'seconds': round(s.seconds, 6),
                    'client_cpu_s': round(s.client_cpu, 4),
                    'server_cpu_s': round(s.server_cpu, 4),
                    'other_cpu_s': round(s.other_cpu, 4),
                    'rss_peak_mib': round(s.peak_rss_kib / 1024, 1)}
                   for s in runs]
            for kind, runs in samples.items()}


def ratios(results, stat):
    """ours / reference for each column both registries have."""
    if 'ours' not in results or 'reference' not in results:
        return {}
    ours, ref = results['ours']['metrics'], results['reference']['metrics']
    found = {}
    for key in [k for k, _, _ in RATES] + [MEMORY[0]]:
        if key in ours and key in ref and ref[key][stat]:
            found[key] = ours[key][stat] / ref[key][stat]
    return found


def table(results, stat, settings):
    headers = [title for _, title, _ in RATES] + [MEMORY[1]]
    keys = [key for key, _, _ in RATES] + [MEMORY[0]]
    rows = []
    marked = False
    for result in results.values():
        metrics = result['metrics']
        cells = []
        for key in keys:
            failed = key in result['failed']
            if key in metrics:
                cells.append(_number(metrics[key][stat]) +
                             ('!' if failed else ''))
                marked = marked or failed
            else:
                cells.append('FAILED' if failed else '-')
        rows.append([result['title']] + cells)
    found = ratios(results, stat)
    if found:
        rows.append(['ours/reference'] + [
            '%.2fx' % found[k] if k in found else '-' for k in keys])
    first = max(len('registry'), *(len(row[0]) for row in rows))
    widths = [max(len(h), 9) for h in headers]
    lines = ['  '.join(['registry'.ljust(first)] + [
        h.rjust(w) for h, w in zip(headers, widths)])]
    for row in rows:
        lines.append('  '.join([row[0].ljust(first)] + [
            c.rjust(w) for c, w in zip(row[1:], widths)]))
    lines.append('')
    lines.append(_legend(stat, settings))
    if marked:
        lines.append('!: some runs failed; the number is from the others.')
    return '\n'.join(lines)


def _legend(stat, s):
    small = ('one POST ?digest= with the body' if s['small_push'] ==
             'monolithic' else 'POST, then PUT ?digest= with the body')
    return '\n'.join([
        '%s of %d run%s; %d MiB blob over %s; MiB = 2^20 bytes.' % (
            stat, s['repeat'], '' if s['repeat'] == 1 else 's',
            s['blob_mib'], 'TLS' if s['tls'] else 'plain HTTP'),
        '%d requests of each small kind over %d connections; small push = '
        '%d-byte blob, %s.' % (s['requests'], s['concurrency'],
                               s['small_bytes'], small),
        'peak RSS = VmHWM of the server process at the end (lower is '
        'better); every other column: higher is better.',
    ])


def _median_share(runs, field):
    return statistics.median(getattr(s, field) / s.seconds for s in runs)


def background_warning(results, *, threshold=0.25):
    """A warning if other processes used the CPUs during the runs."""
    worst = 0.0
    for r in results.values():
        for runs in r['samples'].values():
            worst = max(worst, _median_share(runs, 'other_cpu'))
    if worst < threshold:
        return None
    return ('warning: other processes used up to %.0f%% of a core during '
            'the runs (median per kind); the machine is shared, so the '
            'numbers are noisy. Use -v to see where, and --repeat to take '
            'more runs.' % (worst * 100))


def cpu_table(results):
    """Median CPU use per kind, as % of one core: client/server/other."""
    kinds = [(key, title.split()[0] if key != 'manifest' else 'manifest')
             for key, title, _ in RATES]
    lines = ['CPU during the runs, % of one core, median '
             '(client/server/others; 2 cores = 200):']
    width = max([len(r['title']) for r in results.values()] + [8])
    lines.append(' ' * width + ''.join(
        name.rjust(15) for _, name in kinds))
    for result in results.values():
        cells = []
        for key, _ in kinds:
            runs = result['samples'].get(key, [])
            shares = [_median_share(runs, f) * 100 for f in (
                'client_cpu', 'server_cpu', 'other_cpu')] if runs else None
            cells.append(('%d/%d/%d' % tuple(shares) if shares else
                          '-').rjust(15))
        lines.append(result['title'].ljust(width) + ''.join(cells))
    transfer = ['%s %.0f MiB' % (r['title'], r['metrics']['transfer_rss'][
        'max']) for r in results.values() if 'transfer_rss' in r['metrics']]
    if transfer:
        lines.append('largest RSS sampled during the large push/pull: ' +
                     ', '.join(transfer))
    return '\n'.join(lines)


def write_json(path, results, stat, settings, pullthrough=None):
    document = {
        'settings': settings,
        'stat': stat,
        'registries': {
            key: {'title': r['title'], 'error': r['error'],
                  'failed': r['failed'],
                  'metrics': r['metrics'],
                  'runs': runs_detail(r['samples'])}
            for key, r in results.items()},
        'ratio_ours_reference': ratios(results, stat),
    }
    if pullthrough is not None:
        document['pullthrough'] = pullthrough
    with open(path, 'w') as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write('\n')


def _number(value):
    return '%.0f' % value if value >= 100 else '%.1f' % value
