import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';

// `type: kubernetes` config entries: a namespace name, account Secret names that Kubernetes
// accepts (with room for the companion), and strict keys; each bad input names its key path.

const base = (provider: Record<string, unknown>, secret = 'billing-db') =>
  JSON.stringify({
    state: { url: 'postgres://pgrotate@localhost/pgrotate' },
    providers: { k8s: provider },
    targets: { main: { host: 'localhost', port: 5432, database: 'app', admin: { username: 'a', password: 'p' } } },
    accounts: [{ name: 'billing', target: 'main', role: 'billing_app', provider: 'k8s', secret }],
  });

describe('kubernetes provider config', () => {
  it('accepts the documented entry', () => {
    const { config } = parseConfigText(base({ type: 'kubernetes', namespace: 'apps' }), {});
    expect(config.providers.k8s).toEqual({ type: 'kubernetes', namespace: 'apps' });
  });

  it.each([
    [
      { type: 'kubernetes', namespace: 'Apps' },
      'billing-db',
      /providers\.k8s\.namespace: not a Kubernetes namespace name/,
    ],
    [{ type: 'kubernetes' }, 'billing-db', /providers\.k8s\.namespace/],
    [
      { type: 'kubernetes', namespace: 'apps', kubeConfig: '/x' },
      'billing-db',
      /providers\.k8s\.kubeConfig: unknown key/,
    ],
    [
      { type: 'kubernetes', namespace: 'apps' },
      'Billing_DB',
      /accounts\[0\]\.secret: account "billing": secret "Billing_DB" is not a valid Kubernetes Secret name/,
    ],
    [
      { type: 'kubernetes', namespace: 'apps' },
      'x'.repeat(250),
      /accounts\[0\]\.secret: .*its companion Secret .* would exceed 253 characters \(use at most 244\)/,
    ],
    [
      { type: 'kubernetes', namespace: 'apps' },
      'billing-db-pgrotate',
      /accounts\[0\]\.secret: .*ends in "-pgrotate", which pgrotate reserves/,
    ],
  ])('refuses %j with secret %s', (provider, secret, message) => {
    expect(() => parseConfigText(base(provider, secret), {})).toThrow(message);
  });
});
