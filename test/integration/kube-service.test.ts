import { describe, expect, it } from 'vitest';
import { kubectl, kubectlResult, kubeServer } from '../support/kube-server.js';

// The test API server is real: it validates objects, enforces RBAC and issues ServiceAccount tokens.

describe('test Kubernetes API server', () => {
  it('stores Secrets, enforces RBAC and issues ServiceAccount tokens', () => {
    const info = kubeServer();
    const ns = `kube-smoke-${process.pid}`;
    kubectl(['create', 'namespace', ns]);
    try {
      kubectl(['-n', ns, 'create', 'secret', 'generic', 'db', '--from-literal=username=app']);
      const user = Buffer.from(kubectl(['-n', ns, 'get', 'secret', 'db', '-o', 'jsonpath={.data.username}']), 'base64');
      expect(user.toString()).toBe('app');
      kubectl(['-n', ns, 'create', 'serviceaccount', 'reader']);
      const token = kubectl(['-n', ns, 'create', 'token', 'reader', '--duration=10m']).trim();
      expect(token.split('.')).toHaveLength(3);
      const canI = kubectlResult([
        'auth',
        'can-i',
        'get',
        'secrets',
        '-n',
        ns,
        `--as=system:serviceaccount:${ns}:reader`,
      ]);
      expect(canI.stdout.trim()).toBe('no');
      expect(canI.status).toBe(1);
      expect(() => kubectl(['-n', ns, 'create', 'secret', 'generic', 'Bad_Name'])).toThrow(/Invalid value/);
      expect(info.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    }
  });
});
