import { describe, expect, it } from 'vitest';
import { exportedMetricNames, promqlMetricNames } from '../support/promql-names.js';

describe('promqlMetricNames', () => {
  it('finds the metrics of selectors, functions, aggregations and binary operators', () => {
    expect(promqlMetricNames('max(pgrotate_failed_accounts{namespace=~"$namespace"}) > 0')).toEqual([
      'pgrotate_failed_accounts',
    ]);
    expect(
      promqlMetricNames(
        'histogram_quantile(0.95, sum by (le, outcome) (rate(pgrotate_rotation_duration_seconds_bucket{outcome="succeeded"}[$__rate_interval])))',
      ),
    ).toEqual(['pgrotate_rotation_duration_seconds_bucket']);
    expect(
      promqlMetricNames('sum(rate(a_sum[5m])) / on (job) group_left (x) sum(rate(a_count[5m])) and bool b 1e3'),
    ).toEqual(['a_count', 'a_sum', 'b']);
    expect(promqlMetricNames('max by (account) (pgrotate_next_due_timestamp_seconds) - time()')).toEqual([
      'pgrotate_next_due_timestamp_seconds',
    ]);
    expect(promqlMetricNames('label_values(pgrotate_failed_accounts, namespace)')).toEqual([
      'pgrotate_failed_accounts',
    ]);
    expect(promqlMetricNames('up{job="a{b}"} offset 5m')).toEqual(['up']);
  });
});

describe('exportedMetricNames', () => {
  it('reads the TYPE lines and adds the series of histograms and summaries', () => {
    const text = [
      '# HELP x_total X.',
      '# TYPE x_total counter',
      'x_total 1',
      '# TYPE d_seconds histogram',
      'd_seconds_bucket{le="+Inf"} 0',
      '# TYPE s summary',
      'not_a_family 2',
    ].join('\n');
    expect([...exportedMetricNames(text)].sort()).toEqual([
      'd_seconds',
      'd_seconds_bucket',
      'd_seconds_count',
      'd_seconds_sum',
      's',
      's_count',
      's_sum',
      'x_total',
    ]);
  });
});
