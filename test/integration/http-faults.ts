// An HTTP-level fault layer between one member and the API server, for faults a TCP cut cannot
// stage: a watch that delivers every change late, a slow call, a write that commits but whose
// reply never comes back. TLS is terminated with the API server's own certificate (the harness
// made it, for 127.0.0.1), so the member verifies the same CA and faults can pick requests by verb
// and path. With no fault set, requests and responses pass unchanged (watches stream).
import * as https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface RequestMatch {
  method?: string;
  /** matched against the request's path and query */
  path?: RegExp;
}

export interface HttpFaults {
  /** Every byte of a watch response reaches the member this many ms after the API server sent it (0: none). */
  watchDelayMs: number;
  /** Matching requests are held this long before they go to the API server (a slow call), and
   *  while `until` (ms since the epoch) lies ahead, at least until then. */
  slow: (RequestMatch & { ms: number; until?: number }) | null;
  /** Matching requests reach the API server (a write commits) but their responses never reach the
   *  member; a matching response still streaming (a watch) loses its bytes from then on. */
  lostReplies: RequestMatch | null;
}

/** A response the layer kept from the member (lostReplies), with what the API server answered. */
export interface LostReply {
  at: number;
  method: string;
  path: string;
  status: number;
  body: string;
}

export interface FaultLayer {
  port: number;
  /** Change these at any time; they apply to requests (and watch bytes) from then on. */
  faults: HttpFaults;
  lost: LostReply[];
  /** Deliver every watch byte held so far at once (a late watch catching up); later ones are late again. */
  flushWatches(): void;
  close(): Promise<void>;
}

const matches = (m: RequestMatch | null, method: string, path: string) =>
  !!m && (!m.method || m.method === method) && (!m.path || m.path.test(path));

/** Hop-by-hop headers are the connection's own, never forwarded. */
function endToEnd(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...h };
  for (const k of ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']) delete out[k];
  return out;
}

export async function startFaultLayer(opts: { upstreamPort: number; ca: Buffer; key: Buffer; cert: Buffer }): Promise<FaultLayer> {
  const faults: HttpFaults = { watchDelayMs: 0, slow: null, lostReplies: null };
  const lost: LostReply[] = [];
  const streams = new Set<{ flush(): void }>();
  const agent = new https.Agent({ keepAlive: true, ca: opts.ca });
  const server = https.createServer({ key: opts.key, cert: opts.cert }, (req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const watch = /[?&]watch=(1|true)(&|$)/.test(path);
    const body: Buffer[] = [];
    let gone = false;
    let up: ReturnType<typeof https.request> | null = null;
    let upDone = false;
    res.on('close', () => { gone = true; if (up && !upDone) up.destroy(); });
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      // decided when the request is complete, as a network fault would act on it then
      const lose = matches(faults.lostReplies, method, path);
      const slowed = matches(faults.slow, method, path);
      const go = () => {
        const until = slowed ? faults.slow?.until ?? 0 : 0;
        if (until > Date.now()) setTimeout(go, until - Date.now()); else forward(lose);
      };
      setTimeout(go, slowed ? faults.slow!.ms : 0);
    });
    function forward(lose: boolean) {
      if (gone) return;
      up = https.request({ host: '127.0.0.1', port: opts.upstreamPort, method, path, agent, headers: { ...endToEnd(req.headers), host: `127.0.0.1:${opts.upstreamPort}` } }, (ures) => {
        if (lose) {
          const text: Buffer[] = [];
          ures.on('data', (c: Buffer) => text.push(c));
          ures.on('end', () => { upDone = true; lost.push({ at: Date.now(), method, path, status: ures.statusCode ?? 0, body: Buffer.concat(text).toString('utf8').slice(0, 2_000) }); });
          return; // the member never hears back: its request times out
        }
        res.writeHead(ures.statusCode ?? 502, endToEnd(ures.headers));
        // Bytes keep their order; each is held until watchDelayMs after it arrived (never earlier
        // than the byte before it), so a watch delivers every change late, none lost.
        const queue: { due: number; run: () => void }[] = [];
        let timer: NodeJS.Timeout | null = null;
        const pump = () => {
          timer = null;
          while (queue.length && queue[0]!.due <= Date.now()) queue.shift()!.run();
          if (queue.length && !gone) timer = setTimeout(pump, queue[0]!.due - Date.now());
        };
        const later = (run: () => void) => {
          // a response still streaming (a watch) loses its bytes too while its replies are lost
          if (matches(faults.lostReplies, method, path)) return;
          const delay = watch ? faults.watchDelayMs : 0;
          queue.push({ due: Math.max(Date.now() + delay, queue[queue.length - 1]?.due ?? 0), run });
          if (!timer) pump();
        };
        const stream = { flush: () => { for (const q of queue) q.due = 0; if (timer) clearTimeout(timer); pump(); } };
        streams.add(stream);
        res.on('close', () => { streams.delete(stream); if (timer) clearTimeout(timer); });
        ures.on('data', (c: Buffer) => later(() => { if (!gone) res.write(c); }));
        ures.on('end', () => { upDone = true; later(() => res.end()); });
        ures.on('error', () => res.destroy());
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(body));
    }
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port, faults, lost,
    flushWatches: () => { for (const s of streams) s.flush(); },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); agent.destroy(); server.close(() => r()); }),
  };
}
