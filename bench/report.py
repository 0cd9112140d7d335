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
    for result in results.values():
        metrics = result['metrics']
        cells = [_number(metrics[k][stat]) if k in metrics else
                 ('FAILED' if result.get('error') else '-') for k in keys]
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


def cpu_table(results):
    """Median CPU use of client and server per kind, as % of one core."""
    kinds = [(key, title.split()[0] if key != 'manifest' else 'manifest')
             for key, title, _ in RATES]
    lines = ['CPU during the runs, % of one core (client / server), '
             'median:']
    width = max([len(r['title']) for r in results.values()] + [8])
    lines.append(' ' * width + ''.join(
        name.rjust(14) for _, name in kinds))
    for result in results.values():
        cells = []
        for key, _ in kinds:
            runs = result.get('samples', {}).get(key, [])
            if not runs:
                cells.append('-'.rjust(14))
                continue
            client = statistics.median(s.client_cpu / s.seconds for s in runs)
            server = statistics.median(s.server_cpu / s.seconds for s in runs)
            cells.append(('%d / %d' % (client * 100, server * 100)).rjust(14))
        lines.append(result['title'].ljust(width) + ''.join(cells))
    transfer = ['%s %.0f MiB' % (r['title'], r['metrics']['transfer_rss'][
        'max']) for r in results.values() if 'transfer_rss' in r['metrics']]
    if transfer:
        lines.append('largest RSS sampled during the large push/pull: ' +
                     ', '.join(transfer))
    return '\n'.join(lines)


def write_json(path, results, stat, settings):
    document = {
        'settings': settings,
        'stat': stat,
        'registries': {
            key: {'title': r['title'], 'error': r.get('error'),
                  'metrics': r['metrics'],
                  'runs': runs_detail(r.get('samples', {}))}
            for key, r in results.items()},
        'ratio_ours_reference': ratios(results, stat),
    }
    with open(path, 'w') as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write('\n')


def _number(value):
    return '%.0f' % value if value >= 100 else '%.1f' % value
