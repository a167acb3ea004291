// node-postgres asks, once, when pg/lib/stream.js loads, whether it runs in a Cloudflare Worker.
// Where `navigator` is missing (Node 20; Node 21+ defines it, userAgent "Node.js/<major>") it finds
// out by building `new Response(null, { cf: ... })`, and touching `Response` loads Node's whole
// fetch implementation (undici): about 40 ms of every CLI run on the 2-core bench machine, for a
// class pgrotate never uses. Loading pg while a Node 21-style `navigator` is present gives pg its
// answer without it; the stand-in is removed again at once, so no other library (the cloud SDKs
// read `navigator` to tell a browser from Node) ever sees it.

/** Load node-postgres (into the module cache) without loading undici; call before anything imports pg. */
export async function preloadPg(): Promise<void> {
  const global = globalThis as { navigator?: unknown };
  if (global.navigator !== undefined) {
    await import('pg');
    return;
  }
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0] ?? ''}` },
    configurable: true,
    writable: true,
  });
  try {
    await import('pg');
  } finally {
    delete global.navigator;
  }
}
