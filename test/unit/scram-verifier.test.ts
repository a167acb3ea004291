import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveScramKeys, scramVerifier, SCRAM_VERIFIER_PATTERN } from '../../src/core/scram/scram-verifier.js';

// RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
const RFC = {
  password: 'pencil',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinalWithoutProof: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

describe('SCRAM-SHA-256', () => {
  it('derives keys that reproduce the RFC 7677 client proof and server signature', async () => {
    const keys = await deriveScramKeys(RFC.password, Buffer.from(RFC.salt, 'base64'), RFC.iterations);
    const authMessage = `${RFC.clientFirstBare},${RFC.serverFirst},${RFC.clientFinalWithoutProof}`;
    const clientSignature = createHmac('sha256', keys.storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = (keys.clientKey[i] as number) ^ (clientSignature[i] as number);
    expect(proof.toString('base64')).toBe(RFC.proof);
    expect(createHmac('sha256', keys.serverKey).update(authMessage).digest('base64')).toBe(RFC.serverSignature);
  });

  it('formats the verifier as PostgreSQL stores it, with the given iterations and a fresh 16-byte salt', async () => {
    const v = await scramVerifier('pencil', 8192);
    expect(v).toMatch(SCRAM_VERIFIER_PATTERN);
    const [, iterSalt] = v.split('$');
    const [iter, salt] = (iterSalt as string).split(':');
    expect(iter).toBe('8192');
    expect(Buffer.from(salt as string, 'base64')).toHaveLength(16);
    expect(await scramVerifier('pencil')).not.toBe(await scramVerifier('pencil'));
    expect(v).not.toContain('pencil');
  });

  it('is deterministic for a fixed salt and matches the RFC keys', async () => {
    const salt = Buffer.from(RFC.salt, 'base64');
    const keys = await deriveScramKeys(RFC.password, salt, 4096);
    expect(await scramVerifier(RFC.password, 4096, salt)).toBe(
      `SCRAM-SHA-256$4096:${RFC.salt}$${keys.storedKey.toString('base64')}:${keys.serverKey.toString('base64')}`,
    );
  });

  it('refuses passwords outside printable ASCII rather than guess at SASLprep', async () => {
    await expect(scramVerifier('pässword')).rejects.toThrow(/printable ASCII/);
    await expect(scramVerifier('has space')).rejects.toThrow(/printable ASCII/);
  });
});
