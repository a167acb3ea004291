import { createHmac } from 'node:crypto';

/** The header that carries a webhook request's signature. */
export const SIGNATURE_HEADER = 'X-Pgrotate-Signature';

/**
 * The signature header's value for `body` sent at `unixSeconds`:
 * `t=<seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The time is signed too, so a
 * receiver that refuses old timestamps cannot be replayed an old request.
 */
export function signatureValue(secret: string, body: string, unixSeconds: number): string {
  const t = String(Math.floor(unixSeconds));
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}
