// The e2e write client: one INSERT every INTERVAL ms through the read-write Service, one at a time,
// each acknowledged id logged. Runs on the host against the Service's ClusterIP (loopback-local
// traffic: kube-proxy routes it to the pod), bounded by --seconds or SIGTERM.
//
//   node test/e2e/writer.mjs --host 10.96.0.42 --user app --password-file F --db app --out LOG
//
// LOG, one line per attempt: "<epoch ms> ok <id>" or "<epoch ms> err <id> <message>".
// A write counts as acknowledged only when COMMIT returned: with synchronous replication on, an
// acknowledged id must survive every failover (the e2e suite checks it).
import pg from 'pg';
import { appendFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    host: { type: 'string' }, port: { type: 'string', default: '5432' },
    user: { type: 'string', default: 'app' }, 'password-file': { type: 'string' },
    db: { type: 'string', default: 'app' }, out: { type: 'string' },
    interval: { type: 'string', default: '50' }, seconds: { type: 'string', default: '3600' },
    table: { type: 'string', default: 'e2e_writes' },
  },
});
if (!a.host || !a.out || !a['password-file']) {
  console.error('usage: writer.mjs --host H --password-file F --out LOG [--port --user --db --interval --seconds]');
  process.exit(2);
}
const password = readFileSync(a['password-file'], 'utf8').trim();
const interval = Number(a.interval);
const until = Date.now() + Number(a.seconds) * 1000;
const table = a.table;
if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`bad table name ${table}`);
let stop = false;
process.on('SIGTERM', () => { stop = true; });
process.on('SIGINT', () => { stop = true; });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const line = (s) => appendFileSync(a.out, `${Date.now()} ${s}\n`);

let client = null;
async function connect() {
  const c = new pg.Client({
    host: a.host, port: Number(a.port), user: a.user, password, database: a.db,
    connectionTimeoutMillis: 1000, query_timeout: 3000, statement_timeout: 3000,
    application_name: 'pga-e2e-writer',
  });
  c.on('error', () => {}); // a dropped connection surfaces on the next query
  await c.connect();
  await c.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`);
  return c;
}

// Ids continue after the largest one already in the table (the suite restarts the writer per step).
let id = 0;
while (!stop && Date.now() < until) {
  const t = Date.now();
  try {
    if (!client) {
      client = await connect();
      if (id === 0) id = Number((await client.query(`SELECT coalesce(max(id), 0) AS m FROM ${table}`)).rows[0].m);
    }
    id += 1;
    await client.query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]);
    line(`ok ${id}`);
  } catch (e) {
    line(`err ${id} ${String(e && e.message || e).replace(/\s+/g, ' ').slice(0, 160)}`);
    const c = client; client = null;
    if (c) c.end().catch(() => {});
  }
  await sleep(Math.max(0, interval - (Date.now() - t)));
}
if (client) await client.end().catch(() => {});
