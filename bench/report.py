"""Turn samples into numbers, a table and a JSON document."""

import json
import statistics

from bench.concurrent import percentile

MIB = 1 << 20

# (key, table header, divisor of Sample.rate); rates: higher is better
RATES = (
    ('push', 'push MiB/s', MIB),
    ('chunked_push', 'chunked push MiB/s', MIB),
    ('pull', 'pull MiB/s', MIB),
    ('head', 'HEAD req/s', 1),
    ('manifest', 'manifest GET/s', 1),
    ('small_push', 'small push/s', 1),
)
MEMORY = ('peak_rss', 'peak RSS MiB')      # lower is better
RSS_SUM = ('rss_sum', 'RSS sum MiB')        # with workers: all processes
# the concurrent kinds (--concurrent): MiB/s, higher is better
CONCURRENT = (
    ('many_pull', 'pulls'),
    ('many_push', 'pushes'),
)
# every kind whose peak RSS per process is reported, in table order
KINDS = [key for key, _, _ in RATES] + [key for key, _ in CONCURRENT]
RSS_TARGET_MIB = 100        # issue 12: per process, in every scenario


def result(subject):
    """What the report needs of one runner.Subject."""
    failed = [key for key in KINDS if not subject.can(key)]
    if subject.dead:
        failed.append(MEMORY[0])
    memory = getattr(subject, 'memory', None) or {
        'main': subject.peak_rss_kib, 'workers': []}
    return {'title': subject.title, 'error': subject.error,
            'failed': failed, 'samples': subject.samples,
            'memory': memory,
            'metrics': summarize(subject.samples, subject.peak_rss_kib,
                                 memory)}


def _higher(runs):
    return {'runs': runs, 'best': max(runs),
            'median': statistics.median(runs)}


def _lower(runs):
    return {'runs': runs, 'best': min(runs),
            'median': statistics.median(runs)}


def _constant(value):
    return {'runs': [value], 'best': value, 'median': value}


def summarize(samples, peak_rss_kib, memory=None):
    """Metrics of one registry from its samples ({kind: [Sample]}).

    ``<kind>_rss``: the VmHWM of its largest process during that kind
    (the largest over the runs), ``<kind>_rss_sum`` of all its processes;
    ``<kind>_p99``: seconds, of the concurrent kinds."""
    metrics = {}
    for key, _, divisor in RATES:
        runs = [sample.rate / divisor for sample in samples.get(key, [])]
        if runs:
            metrics[key] = _higher(runs)
    for key, _ in CONCURRENT:
        runs = samples.get(key, [])
        if runs:
            metrics[key] = _higher([s.rate / MIB for s in runs])
            metrics[key + '_p99'] = _lower([
                percentile(s.latencies, 0.99) for s in runs])
    for key in KINDS:
        peaks = [s.process_peaks_kib for s in samples.get(key, [])
                 if s.process_peaks_kib]
        if peaks:
            metrics[key + '_rss'] = _constant(max(p[0] for p in peaks) / 1024)
            metrics[key + '_rss_sum'] = _constant(
                max(sum(p) for p in peaks) / 1024)
    if peak_rss_kib:
        metrics['peak_rss'] = _constant(peak_rss_kib / 1024)
    if memory and memory['workers']:
        metrics['rss_sum'] = _constant(
            (memory['main'] + sum(memory['workers'])) / 1024)
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
                    'rss_peak_mib': round(s.peak_rss_kib / 1024, 1),
                    'process_peaks_mib': [round(k / 1024, 1)
                                          for k in s.process_peaks_kib],
                    'latencies_s': [round(t, 4) for t in s.latencies]}
                   for s in runs]
            for kind, runs in samples.items()}


def ours_keys(results):
    """The zuul-registry rows: ``ours``, or one per worker count."""
    return [key for key in results if key.startswith('ours')]


def ratio_label(results, key):
    if key == 'ours':
        return 'ours/reference'
    return '%s/reference' % results[key]['title'].rpartition(' ')[2]


def ratios(results, stat, key='ours'):
    """``key`` / reference for each metric both registries have."""
    if key not in results or 'reference' not in results:
        return {}
    ours, ref = results[key]['metrics'], results['reference']['metrics']
    return {name: ours[name][stat] / ref[name][stat]
            for name in ours if stat in ours[name] and name in ref and
            ref[name].get(stat)}


def _grid(headers, rows, first_header='registry'):
    first = max([len(first_header)] + [len(row[0]) for row in rows])
    widths = [max(len(h), 9) for h in headers]
    lines = ['  '.join([first_header.ljust(first)] + [
        h.rjust(w) for h, w in zip(headers, widths)])]
    for row in rows:
        lines.append('  '.join([row[0].ljust(first)] + [
            c.rjust(w) for c, w in zip(row[1:], widths)]))
    return lines


def _rows(results, stat, columns):
    """Registry rows, then one ratio row per zuul-registry row; columns:
    [(metric key, failure key)]. (rows, whether a cell is marked)."""
    rows, marked = [], False
    for result in results.values():
        metrics = result['metrics']
        cells = []
        for key, kind in columns:
            failed = kind in result['failed']
            if key in metrics:
                value = metrics[key][stat]
                cells.append(('%.2f' % value if key.endswith('_p99') else
                              _number(value)) + ('!' if failed else ''))
                marked = marked or failed
            else:
                cells.append('FAILED' if failed else '-')
        rows.append([result['title']] + cells)
    for key in ours_keys(results):
        found = ratios(results, stat, key)
        if found:
            rows.append([ratio_label(results, key)] + [
                '%.2fx' % found[k] if k in found else '-'
                for k, _ in columns])
    return rows, marked


def _multi_process(results):
    return any(r['memory']['workers'] for r in results.values())


def table(results, stat, settings):
    headers = [title for _, title, _ in RATES] + [MEMORY[1]]
    columns = [(key, key) for key, _, _ in RATES] + [(MEMORY[0], MEMORY[0])]
    if _multi_process(results):
        headers.append(RSS_SUM[1])
        columns.append((RSS_SUM[0], MEMORY[0]))
    rows, marked = _rows(results, stat, columns)
    lines = _grid(headers, rows)
    lines.append('')
    lines.append(_legend(stat, settings))
    targets = _chunked_targets(results, stat)
    if targets:
        lines.append(targets)
    if marked:
        lines.append('!: some runs failed; the number is from the others.')
    return '\n'.join(lines)


def _chunked_targets(results, stat):
    """Issue 12's chunked push targets, reported, never asserted."""
    parts = []
    for key in ours_keys(results):
        metrics = results[key]['metrics']
        found = ratios(results, stat, key)
        if 'chunked_push' not in found:
            continue
        own = metrics.get('push', {}).get(stat)
        parts.append('%s %.2fx of the reference, %s of its own push' % (
            results[key]['title'], found['chunked_push'],
            '%.2fx' % (metrics['chunked_push'][stat] / own) if own else '-'))
    if not parts:
        return None
    return ('targets (issue 12, reported, not asserted): chunked push '
            '>= 1.50x of the reference and >= 0.85x of its own monolithic '
            'push: ' + '; '.join(parts) + '.')


def memory_table(results, settings):
    """Peak RSS per process in each kind of measurement, and the target."""
    kinds = [k for k in KINDS if any(k + '_rss' in r['metrics']
                                     for r in results.values())]
    titles = dict([(k, t.split()[0]) for k, t, _ in RATES] +
                  [('manifest', 'manifest'), ('small_push', 'small-push'),
                   ('chunked_push', 'chunked-push'),
                   ('many_pull', '%d-pulls' % settings['concurrent_pulls']),
                   ('many_push', '%d-pushes' % settings['concurrent_pushes'])])
    multi = _multi_process(results)
    lines = ['peak RSS per process, MiB, by measurement (VmHWM reset before '
             'each run, read after; largest over the runs)' +
             (': largest process/sum of processes' if multi else '') + ':']
    if not kinds:
        lines.append('(not measured: the kernel did not allow resetting '
                     'VmHWM through /proc/PID/clear_refs)')
    rows, worst = [], {}
    for key, result in results.items():
        m = result['metrics']
        cells = []
        for kind in kinds:
            if kind + '_rss' not in m:
                cells.append('-')
                continue
            largest = m[kind + '_rss']['best']
            if largest > worst.get(key, (0, None))[0]:
                worst[key] = (largest, titles[kind])
            cell = '%.0f' % largest
            if result['memory']['workers']:
                cell += '/%.0f' % m[kind + '_rss_sum']['best']
            cells.append(cell)
        memory = result['memory']
        whole = '%.0f' % (memory['main'] / 1024)
        if memory['workers']:
            whole = 'sup %s, w %s' % (whole, ' '.join(
                '%.0f' % (k / 1024) for k in memory['workers']))
        rows.append([result['title']] + cells + [whole])
    headers = [titles[k] for k in kinds] + ['whole run']
    lines += _grid(headers, rows)
    lines.append('whole run: VmHWM of each process over the whole run '
                 '(with workers: the supervisor, then each worker).')
    verdicts = []
    for key, result in results.items():
        if key not in worst:
            continue
        largest, where = worst[key]
        verdicts.append('%s %s (largest %.0f MiB, in %s)' % (
            result['title'], 'met' if largest <= RSS_TARGET_MIB else
            'MISSED', largest, where))
    if verdicts:
        lines.append('target (issue 12, reported, not asserted): peak RSS '
                     '<= %d MiB per process in every measurement: %s.' % (
                         RSS_TARGET_MIB, '; '.join(verdicts)))
    return '\n'.join(lines)


def concurrent_table(results, stat, settings):
    """The concurrent pulls and pushes: MiB/s, p99, peak RSS."""
    s = settings
    headers = ['%d pulls MiB/s' % s['concurrent_pulls'], 'pull p99 s',
               '%d pushes MiB/s' % s['concurrent_pushes'], 'push p99 s',
               'peak RSS MiB']
    columns = [('many_pull', 'many_pull'), ('many_pull_p99', 'many_pull'),
               ('many_push', 'many_push'), ('many_push_p99', 'many_push'),
               ('many_rss', 'many_pull')]
    multi = _multi_process(results)
    if multi:
        headers.append(RSS_SUM[1])
        columns.append(('many_rss_sum', 'many_pull'))
    for result in results.values():
        m = result['metrics']
        for suffix in ('_rss', '_rss_sum'):
            found = [m[k + suffix]['best'] for k, _ in CONCURRENT
                     if k + suffix in m]
            if found:
                m['many' + suffix] = _constant(max(found))
    rows, marked = _rows(results, stat, columns)
    lines = ['concurrent clients:']
    lines += _grid(headers, rows)
    lines.append('')
    lines.append(
        '%s of %d run%s over %s; each client on its own thread and '
        'connection, started together. pulls: %d clients GET one %d MiB '
        'blob; pushes: %d clients push a different %d MiB blob each (POST, '
        'one PATCH, PUT). MiB/s: all bytes over the time until the last '
        'client finished; p99: nearest rank of the clients\' times from '
        'the common start (lower is better); peak RSS: largest process\'s '
        'VmHWM during either%s.' % (
            stat, s['repeat'], '' if s['repeat'] == 1 else 's',
            'TLS' if s['tls'] else 'plain HTTP', s['concurrent_pulls'],
            s['concurrent_mib'], s['concurrent_pushes'], s['concurrent_mib'],
            ', RSS sum: of all its processes' if multi else ''))
    targets = _pull_targets(results, stat) if s['tls'] else None
    if targets:
        lines.append(targets)
    if marked:
        lines.append('!: some runs failed; the number is from the others.')
    return '\n'.join(lines)


def _pull_targets(results, stat):
    """Issue 12's TLS pull targets, reported, never asserted."""
    parts = []
    for key in ours_keys(results):
        found = ratios(results, stat, key)
        label = results[key]['title']
        if 'pull' in found:
            parts.append('%s one pull %.2fx (target >= 1.00x)' % (
                label, found['pull']))
        if 'many_pull' in found and 'auto' in label:
            parts.append('%s concurrent pulls %.2fx (target >= 1.20x)' % (
                label, found['many_pull']))
    if not parts:
        return None
    return 'targets (issue 12, reported, not asserted; over TLS): ' + \
        '; '.join(parts) + '.'


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
        'better; with workers the largest process\'s, and RSS sum adds the '
        'supervisor\'s and every worker\'s: pages they share count in '
        'each); every other column: higher is better.',
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
             for key, title, _ in RATES] + [
        (key, 'many ' + name) for key, name in CONCURRENT
        if any(key in r['samples'] for r in results.values())]
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
                  'memory_kib': r['memory'],
                  'runs': runs_detail(r['samples'])}
            for key, r in results.items()},
        'ratio_ours_reference': ratios(results, stat),
        'ratios': {key: ratios(results, stat, key)
                   for key in ours_keys(results)},
    }
    if pullthrough is not None:
        document['pullthrough'] = pullthrough
    with open(path, 'w') as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write('\n')


def _number(value):
    return '%.0f' % value if value >= 100 else '%.1f' % value
