import { get as httpGet } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { AzureSecretOperation } from '../../providers/azure/azure-error.js';
import type { LowkeyVaultInfo } from './lowkey-vault-server.js';

// Lowkey Vault has no authorization at all (any bearer token may do anything), so it cannot answer
// "this identity may not set secrets". This https proxy sits in front of a real Lowkey Vault and
// plays the part of Key Vault's RBAC check only: an authenticated request for a denied operation
// gets the 403 that Azure sends (code Forbidden, inner code ForbiddenByRbac, the action on a later
// line of the message); every other request is forwarded to the emulator unchanged. It presents
// the emulator's own certificate (served on its metadata port), so the same caFile trusts both.

export interface AzureDenyProxy {
  /** https://localhost:<port>, to use as vaultUrl. */
  vaultUrl: string;
  /** Operations refused with 403; change it between requests. */
  deny: Set<AzureSecretOperation>;
  /** "operation secret" of every refused request, in order. */
  refused: string[];
  /** "operation secret status" of every request forwarded to the emulator, in order. */
  forwarded: string[];
  close(): Promise<void>;
}

const DATA_ACTION_IN_MESSAGE: Record<AzureSecretOperation, string> = {
  get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  list: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
  set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
  delete: 'Microsoft.KeyVault/vaults/secrets/delete',
  recover: 'Microsoft.KeyVault/vaults/secrets/recover/action',
  purge: 'Microsoft.KeyVault/vaults/secrets/purge/action',
};

/** Which secret operation a Key Vault REST request is, and on which secret name. */
export function classifyRequest(
  method: string,
  path: string,
): { operation: AzureSecretOperation; secret: string } | null {
  const parts = path.split('?')[0]?.split('/').filter(Boolean) ?? [];
  const [collection, name, sub] = parts;
  if (collection === 'secrets') {
    if (!name) return method === 'GET' ? { operation: 'list', secret: '' } : null;
    if (method === 'GET') return { operation: sub === 'versions' ? 'list' : 'get', secret: name };
    if (method === 'PUT' || method === 'PATCH') return { operation: 'set', secret: name };
    if (method === 'DELETE') return { operation: 'delete', secret: name };
  }
  if (collection === 'deletedsecrets') {
    if (method === 'POST' && sub === 'recover' && name) return { operation: 'recover', secret: name };
    if (method === 'DELETE' && name) return { operation: 'purge', secret: name };
    if (method === 'GET') return { operation: 'list', secret: name ?? '' };
  }
  return null;
}

/** Start the proxy in front of `lowkey`. */
export async function startAzureDenyProxy(lowkey: LowkeyVaultInfo): Promise<AzureDenyProxy> {
  const pfx = await fetchBuffer(`http://127.0.0.1:${lowkey.tokenPort}/metadata/default-cert/lowkey-vault.p12`);
  const ca = readFileSync(lowkey.caFile, 'utf8');
  const upstream = new URL(lowkey.vaultUrl);
  const deny = new Set<AzureSecretOperation>();
  const refused: string[] = [];
  const forwarded: string[] = [];
  const server: Server = createServer({ pfx, passphrase: 'changeit' }, (req, res) => {
    const op = classifyRequest(req.method ?? 'GET', req.url ?? '/');
    // Unauthenticated requests get the emulator's 401 challenge, as on Azure (authentication first).
    if (op && deny.has(op.operation) && req.headers.authorization) {
      refused.push(`${op.operation} ${op.secret}`);
      req.resume();
      const body = {
        error: {
          code: 'Forbidden',
          message: `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=00000000-0000-0000-0000-000000000000;oid=00000000-0000-0000-0000-000000000001\r\nAction: '${DATA_ACTION_IN_MESSAGE[op.operation]}'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/test/providers/microsoft.keyvault/vaults/lowkey/secrets/${op.secret}'\r\nAssignment: (not found)\r\nVault: lowkey;location=local\r\n`,
          innererror: { code: 'ForbiddenByRbac' },
        },
      };
      res.writeHead(403, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const out = request(
      {
        host: '127.0.0.1',
        port: Number(upstream.port),
        servername: 'localhost',
        ca,
        method: req.method,
        path: req.url,
        headers,
      },
      (answer) => {
        if (op) forwarded.push(`${op.operation} ${op.secret} ${answer.statusCode ?? 0}`);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    vaultUrl: `https://localhost:${port}`,
    deny,
    refused,
    forwarded,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function fetchBuffer(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks))
          : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)),
      );
    }).on('error', reject);
  });
}
