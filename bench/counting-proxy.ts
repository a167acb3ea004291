import { startTcpProxy } from './chaos/tcp-proxy.js';

// The benchmark's counting proxy in front of OpenBao, in a child process of its own: it follows
// every request pgrotate sends (bench/http-request-counter.ts), and that work — a copy of every
// byte and the framing parser — would otherwise be counted in pgrotate's process.cpuUsage().
// Started by bench/counting-proxy-run.ts over IPC.

/** Parent → proxy. */
export type ProxyCommand =
  { type: 'start'; host: string; port: number } | { type: 'count'; id: number } | { type: 'stop' };

/** Proxy → parent. */
export type ProxyMessage =
  | { type: 'ready'; port: number }
  | { type: 'count'; id: number; requests: number }
  | { type: 'error'; message: string };

const send = (m: ProxyMessage) => process.send?.(m);

let proxy: Awaited<ReturnType<typeof startTcpProxy>> | null = null;
process.on('message', (m: ProxyCommand) => {
  if (m.type === 'start') {
    startTcpProxy({ host: m.host, port: m.port }).then(
      (p) => {
        proxy = p;
        send({ type: 'ready', port: p.port });
      },
      (err: unknown) => send({ type: 'error', message: String(err) }),
    );
  } else if (m.type === 'count') {
    send({ type: 'count', id: m.id, requests: proxy?.httpRequests() ?? 0 });
  } else {
    void (proxy?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  }
});
// The parent went away without a stop: do not outlive it.
process.on('disconnect', () => process.exit(0));
