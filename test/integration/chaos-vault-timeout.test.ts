import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../bench/chaos/tcp-proxy.js';
import { VaultProvider } from '../../providers/vault/vault-provider.js';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';
import type { BaoServerInfo } from '../support/bao-server.js';
import { service } from '../support/provided.js';

// Regression found by the chaos harness (npm run chaos): with OpenBao accepting connections but
// never answering (a stalled proxy, a hung server), the vault provider's `timeout` was not
// applied to its API calls, so a rotation hung — holding its account fence and per-target
// slot — until TCP itself gave up. Each call must fail after `timeout`, naming the provider.

describe('vault provider against a stalled OpenBao', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    const bao = service<BaoServerInfo>('bao');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(bao.address).port) });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('a read fails after the configured timeout, and works again once the server answers', async () => {
    const bao = service<BaoServerInfo>('bao');
    const provider = new VaultProvider({
      name: 'bao',
      address: `http://127.0.0.1:${proxy.port}`,
      mount: 'secret',
      auth: { method: 'token', token: bao.rootToken },
      timeoutMs: 1000,
      redactor: new Redactor(),
      log: createLogger(new Redactor(), { level: 'silent' }),
    });
    try {
      // Healthy first (token lookup, mount check done), then the server stops answering.
      expect(await provider.getCurrent('pg/chaos-timeout-missing')).toBeNull();
      proxy.setMode('stall');
      const started = Date.now();
      const err = await provider.getCurrent('pg/chaos-timeout-missing').then(
        () => null,
        (e: unknown) => e as Error,
      );
      const elapsed = Date.now() - started;
      expect(err, 'a stalled read must fail').not.toBeNull();
      expect(err?.message).toMatch(/provider bao/);
      expect(err?.message).toMatch(/pg\/chaos-timeout-missing/);
      expect(err?.message).toMatch(/did not answer within the provider's timeout/);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(8000);
      expect(proxy.stalled()).toBeGreaterThan(0);
      proxy.setMode('pass');
      expect(await provider.getCurrent('pg/chaos-timeout-missing')).toBeNull();
    } finally {
      proxy.setMode('pass');
      await provider.close();
    }
  }, 30_000);
});
