import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { Redactor } from '../../src/logging/redactor.js';

describe('redaction', () => {
  it('scrubs every registered secret from text, including its JSON and URL-encoded forms', () => {
    const r = new Redactor();
    r.add('s3cr3t/pa"ss');
    expect(r.scrub('x s3cr3t/pa"ss y')).toBe('x [REDACTED] y');
    expect(r.scrub(JSON.stringify({ p: 's3cr3t/pa"ss' }))).not.toContain('s3cr3t');
    expect(r.scrub(`postgres://u:${encodeURIComponent('s3cr3t/pa"ss')}@h/db`)).not.toContain('s3cr3t');
  });

  it('log lines never carry a registered secret, in messages, fields, nested objects or errors', async () => {
    const r = new Redactor();
    const secret = 'Zq8ySecretValue123';
    r.add(secret);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = createLogger(r, { destination: out, level: 'debug' });
    log.info({ detail: { nested: [`has ${secret} inside`] } }, `message with ${secret}`);
    log.error({ err: new Error(`connect failed for password ${secret}`) }, 'failure');
    log.warn({ password: 'another-unregistered-pw', token: 'tok-unregistered-123' }, 'keys');
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).toContain('message with [REDACTED]');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('another-unregistered-pw');
    expect(text).not.toContain('tok-unregistered-123');
  });

  it('masks secret-named keys when copying values for audit details', () => {
    const r = new Redactor();
    expect(r.scrubValue({ password: 'x1', clientSecret: 'y2', oldCredentialExpiresAt: 'z', secret: 'pg/app' })).toEqual({
      password: '[REDACTED]',
      clientSecret: '[REDACTED]',
      oldCredentialExpiresAt: 'z',
      secret: 'pg/app',
    });
  });
});
