// Counts the HTTP/1.1 requests in one client→server byte stream (a keep-alive connection carries
// many), so a TCP proxy can report how many calls a client made without terminating HTTP itself.
// It follows the framing (request head, then a Content-Length body or chunked body) rather than
// searching for request lines, so a body that happens to contain "GET /" is not counted.

type State = { kind: 'head' } | { kind: 'body'; remaining: number } | { kind: 'chunked' };

/** Incremental request counter for one connection; feed it every chunk the client sends. */
export class HttpRequestCounter {
  private state: State = { kind: 'head' };
  private buf: Buffer = Buffer.alloc(0);
  /** Requests whose head has been seen, by method. */
  readonly byMethod = new Map<string, number>();
  count = 0;

  /** Consume the next bytes the client sent. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.state.kind === 'body') {
        const take = Math.min(this.state.remaining, this.buf.length);
        this.buf = this.buf.subarray(take);
        this.state.remaining -= take;
        if (this.state.remaining > 0) return;
        this.state = { kind: 'head' };
        continue;
      }
      if (this.state.kind === 'chunked') {
        // A chunked body ends with a zero-size chunk and an empty line (no trailers from our clients).
        const end = this.buf.indexOf('\r\n0\r\n\r\n');
        const atStart = this.buf.subarray(0, 5).toString('latin1') === '0\r\n\r\n';
        if (atStart) {
          this.buf = this.buf.subarray(5);
        } else if (end >= 0) {
          this.buf = this.buf.subarray(end + 7);
        } else {
          // Keep a tail long enough to hold a split terminator.
          if (this.buf.length > 6) this.buf = this.buf.subarray(this.buf.length - 6);
          return;
        }
        this.state = { kind: 'head' };
        continue;
      }
      const headEnd = this.buf.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = this.buf.subarray(0, headEnd).toString('latin1');
      this.buf = this.buf.subarray(headEnd + 4);
      const method = /^([A-Z]+) \S+ HTTP\/1\.[01]/.exec(head)?.[1];
      if (method) {
        this.count++;
        this.byMethod.set(method, (this.byMethod.get(method) ?? 0) + 1);
      }
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) this.state = { kind: 'chunked' };
      else if (length && Number(length) > 0) this.state = { kind: 'body', remaining: Number(length) };
    }
  }
}
