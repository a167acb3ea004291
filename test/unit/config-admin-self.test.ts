import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/app/load-config.js';

// `admin: self` (issue 29.1) at load: a target's setting reaches its accounts, and what a role
// cannot do to itself (an alternating pair, renewValidUntil) is refused naming the account.

const base = (target: string, account: string) => `
state: { url: postgres://rotator@127.0.0.1:5432/pgrotate, password: x }
providers: { local: { type: file, path: ./secrets.json } }
targets:
  main: { host: 127.0.0.1, database: app, ${target} }
accounts:
  - { name: billing, target: main, provider: local, secret: pg/billing, ${account} }
`;

function errorOf(text: string): string {
  try {
    parseConfigText(text, {}, 'test.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('config: admin: self', () => {
  it('a target with admin: self makes its accounts self-administered; an account may say it itself', () => {
    const fromTarget = parseConfigText(base('admin: self', 'role: billing_app'), {}, 't.yaml').config;
    expect(fromTarget.accounts[0]?.admin).toBe('self');
    const onAccount = parseConfigText(
      base('admin: { username: rotator, password: pw }', 'role: billing_app, admin: self'),
      {},
      't.yaml',
    ).config;
    expect(onAccount.accounts[0]?.admin).toBe('self');
    const neither = parseConfigText(
      base('admin: { username: rotator, password: pw }', 'role: billing_app'),
      {},
      't.yaml',
    ).config;
    expect(neither.accounts[0]?.admin).toBeUndefined();
  });

  it('refuses an alternating account with admin: self, on the account or from its target', () => {
    const pair = 'strategy: alternating, roles: [a_one, a_two]';
    expect(errorOf(base('admin: { username: rotator, password: pw }', `${pair}, admin: self`))).toMatch(
      /accounts\[0\]\.admin: account "billing": admin: self works only with the single-user strategy/,
    );
    expect(errorOf(base('admin: self', pair))).toMatch(
      /accounts\[0\]\.strategy: account "billing": admin: self \(from target "main"\) works only with the single-user strategy/,
    );
  });

  it('refuses renewValidUntil with admin: self (a role may not set its own VALID UNTIL)', () => {
    expect(errorOf(base('admin: self', 'role: billing_app, renewValidUntil: 200d'))).toMatch(
      /accounts\[0\]\.renewValidUntil: account "billing": renewValidUntil needs an admin login with CREATEROLE/,
    );
  });

  it('refuses any other admin value on an account', () => {
    expect(errorOf(base('admin: self', 'role: billing_app, admin: rotator'))).toMatch(/accounts\[0\]\.admin/);
  });
});
