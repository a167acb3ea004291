// Which PostgreSQL server (cluster) a host and port name, as far as the config alone can tell.
// Roles are cluster-wide, so two targets on one server share every role whatever their
// `database`. Only spellings that are certainly the same server are folded together: host names
// are case-insensitive and may end in a root dot, an IPv6 literal may be bracketed, and the
// loopback names all reach this machine. Two DNS names for one address are not recognised (that
// would need a lookup at load time, and the answer can change).

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0:0:0:0:0:0:0:1']);

/** A key equal for two host/port pairs that name the same server (e.g. `localhost` and `127.0.0.1`). */
export function serverKey(host: string, port: number): string {
  // A Unix socket directory is a path: compared as written, less a trailing slash.
  if (host.startsWith('/')) return `${host.replace(/(.)\/+$/, '$1')}:${port}`;
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/(.)\.$/, '$1');
  return `${LOOPBACK.has(name) ? 'loopback' : name}:${port}`;
}
