import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logging/logger.js';
import { Redactor } from '../../src/core/logging/redactor.js';

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
    expect(r.scrubValue({ password: 'x1', clientSecret: 'y2', oldCredentialExpiresAt: 'z', secret: 'pg/app' })).toEqual(
      {
        password: '[REDACTED]',
        clientSecret: '[REDACTED]',
        oldCredentialExpiresAt: 'z',
        secret: 'pg/app',
      },
    );
  });
});

describe('redaction of structured values', () => {
  const secret = 'Kp3xSecretInCause77';

  it('keeps error cause chains and aggregate errors, each scrubbed', () => {
    const r = new Redactor();
    r.add(secret);
    const root = Object.assign(new Error(`auth failed with ${secret}`), { code: '28P01' });
    const err = new Error('provider call failed', { cause: new Error('wrapped', { cause: root }) });
    const out = r.scrubValue(err) as Record<string, unknown>;
    expect(JSON.stringify(out)).not.toContain(secret);
    expect(out).toMatchObject({
      type: 'Error',
      message: 'provider call failed',
      cause: { message: 'wrapped', cause: { code: '28P01', message: 'auth failed with [REDACTED]' } },
    });
    const agg = r.scrubValue(new AggregateError([new Error(secret)], 'several')) as {
      errors: Array<{ message: string }>;
    };
    expect(agg.errors[0]?.message).toBe('[REDACTED]');
  });

  it('reduces Buffers and typed arrays to their size, so secret bytes never print as numbers', () => {
    const r = new Redactor();
    r.add(secret);
    const out = r.scrubValue({ raw: Buffer.from(secret), nested: [{ bytes: new Uint8Array(Buffer.from(secret)) }] });
    expect(out).toEqual({ raw: `[${secret.length} bytes]`, nested: [{ bytes: `[${secret.length} bytes]` }] });
  });

  it('masks secret-named keys whatever the value type, in nested arrays too', () => {
    const r = new Redactor();
    const out = r.scrubValue({
      list: [[{ password: Buffer.from('x') }, { apiKey: 12345, authorization: { scheme: 'Bearer', value: 'abc' } }]],
      ok: true,
      password: null,
    });
    expect(out).toEqual({
      list: [[{ password: '[REDACTED]' }, { apiKey: '[REDACTED]', authorization: '[REDACTED]' }]],
      ok: true,
      password: null,
    });
  });

  it('log lines hold no secret from error causes, Buffers, Maps or deep secret keys', async () => {
    const r = new Redactor();
    r.add(secret);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = createLogger(r, { destination: out, level: 'debug' });
    log.error({ err: new Error('outer', { cause: new Error(`inner ${secret}`) }) }, 'with cause');
    log.info(
      {
        payload: Buffer.from(secret),
        m: new Map([['k', secret]]),
        a: { b: { c: { d: { clientSecret: 'deep-unregistered-value' } } } },
      },
      'binary',
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).not.toContain(secret);
    expect(text).not.toContain('deep-unregistered-value');
    // Bytes of the secret as a JSON number array would slip past the text scrubber.
    expect(text).not.toContain(JSON.stringify([...Buffer.from(secret)]).slice(1, -1));
    expect(text).toContain('inner [REDACTED]');
    expect(text).toContain(`[${secret.length} bytes]`);
  });
});

describe('redaction at scale', () => {
  it('scrubs overlapping and adjacent secrets, and forgets removed ones', () => {
    const r = new Redactor();
    r.add('abcd1234');
    r.add('abcd12345678');
    r.add('zzzz');
    expect(r.scrub('x abcd12345678 abcd1234zzzz y')).toBe('x [REDACTED] [REDACTED][REDACTED] y');
    r.remove('zzzz');
    expect(r.scrub('zzzz')).toBe('zzzz');
    expect(r.size).toBe(2);
  });

  it('with 20,000 known secrets every one is still scrubbed', () => {
    const r = new Redactor();
    const secrets = Array.from({ length: 20_000 }, (_, i) => `pw${i.toString(36)}-${(i * 7919).toString(36)}x`);
    for (const s of secrets) r.add(s);
    for (const s of [secrets[0], secrets[9_999], secrets[19_999]] as string[])
      expect(r.scrub(`before ${s} after`)).toBe('before [REDACTED] after');
    expect(r.scrub('nothing secret here')).toBe('nothing secret here');
  });
});
