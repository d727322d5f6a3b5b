// peers_bench: FieldSync's W1-W3 field-sales workloads (bench/sync_bench.cc)
// run through the tools a user would pick instead of us -- PouchDB against
// express-pouchdb, and Yjs over y-websocket -- on real loopback sockets.
//
//   node peers_bench.mjs [--scale F] [--only pouchdb|yjs] [--pouch-batch-size N]
//                        [--pouch-no-keepalive] [--yjs-deflate] [--data DIR] [--timeout-min M]
//
// Each server and each client runs in its own child process, so wire bytes
// are counted on the server's sockets and peak RSS is per side. Prints
// readable lines, then one line "PEERS_JSON {...}".
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnRpc, secondsBetween, withTimeout, mb } from './common.mjs';
import { makeTerritory, makeDay, w3LineCount, W2_VISITS } from './workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const TERRITORY_SEED = 42;

function parseArgs(argv) {
  const o = { scale: 1.0, only: null, pouchBatchSize: 0, pouchKeepAlive: true, yjsDeflate: false, data: path.join(here, 'data'), timeoutMin: 30 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i], v = argv[i + 1];
    if (a === '--scale') { o.scale = Number(v); ++i; }
    else if (a === '--only') { o.only = v; ++i; }
    else if (a === '--pouch-batch-size') { o.pouchBatchSize = Number(v); ++i; }
    else if (a === '--pouch-no-keepalive') o.pouchKeepAlive = false;
    else if (a === '--yjs-deflate') o.yjsDeflate = true;
    else if (a === '--data') { o.data = path.resolve(v); ++i; }
    else if (a === '--timeout-min') { o.timeoutMin = Number(v); ++i; }
    else if (a === '-h' || a === '--help') { console.log('usage: peers_bench.mjs [--scale F] [--only pouchdb|yjs] [--pouch-batch-size N] [--pouch-no-keepalive] [--yjs-deflate] [--data DIR] [--timeout-min M]'); process.exit(0); }
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.scale > 0)) throw new Error('--scale must be > 0');
  if (o.only && !['pouchdb', 'yjs'].includes(o.only)) throw new Error('--only takes pouchdb or yjs');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const limit = opts.timeoutMin * 60 * 1000;
// Every step is bounded, so a wedged peer ends the run instead of hanging it.
const step = (rpc, cmd, args) => withTimeout(rpc.call(cmd, args), limit, cmd);
const log = (...a) => console.log(...a);
const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const fmtMb = (b) => `${(b / 1e6).toFixed(2)} MB`;

function machine() {
  let debian = null;
  try { debian = fs.readFileSync('/etc/debian_version', 'utf8').trim(); } catch { /* not Debian */ }
  return {
    date: new Date().toISOString(), node: process.version, platform: `${os.type()} ${os.release()}`, debian,
    cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, mem_gb: Math.round(os.totalmem() / 2 ** 30),
    // Other work on a 2-core box skews every timing; the load average says how much.
    loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    scale: opts.scale,
  };
}

function w1Figures(r, m, load) {
  return {
    seconds: r.seconds, records: r.docs ?? r.rows,
    bytes_down: m.bytes_to_clients, bytes_up: m.bytes_from_clients, connections: m.connections,
    client_peak_rss_mb: r.client_peak_rss_mb, client_phase_rss_peak_mb: r.client_phase_rss_peak_mb,
    server_peak_rss_mb: m.server_peak_rss_mb, server_phase_rss_peak_mb: m.server_phase_rss_peak_mb,
    server_load_seconds: load.seconds,
  };
}

function printW1(name, f, rawJsonl) {
  log(`${name} W1 bootstrap: ${f.records} records in ${f.seconds.toFixed(2)} s (${(f.records / f.seconds / 1000).toFixed(1)} k records/s)`);
  log(`${name} W1 wire: ${fmtMb(f.bytes_down)} down, ${fmtMb(f.bytes_up)} up over ${f.connections} connection(s); raw JSONL of the data ${fmtMb(rawJsonl)}`);
  log(`${name} W1 peak RSS: client ${f.client_peak_rss_mb} MB (${f.client_baseline_rss_mb} MB before the sync), server ${f.server_peak_rss_mb} MB lifetime (${f.server_phase_rss_peak_mb} MB sampled during the sync; the untimed server load took ${f.server_load_seconds.toFixed(2)} s)`);
}

function printW2(name, f) {
  log(`${name} W2 push of a day's work: ${(f.seconds * 1000).toFixed(1)} ms to the server's ack, ${kb(f.bytes_up)} up, ${kb(f.bytes_down)} down, ${f.bytes_per_check.toFixed(0)} B up per 30-line check; server verified ${f.server_verified}`);
}

function printW3(name, f) {
  log(`${name} W3 concurrent edits: ${(f.seconds * 1000).toFixed(1)} ms to converge (converged: ${f.converged ? 'yes' : 'NO'}), ${kb(f.bytes)} on the wire (${kb(f.bytes_up)} up, ${kb(f.bytes_down)} down); RSS during the sync: client (both replicas) ${f.client_phase_rss_peak_mb} MB, server ${f.server_phase_rss_peak_mb} MB`);
  log(`${name} W3 lost updates: ${f.lost_updates} of ${f.non_colliding_edits} non-colliding column edits (${(100 * f.lost_updates / f.non_colliding_edits).toFixed(1)}%; ${f.non_colliding_noop_edits} of those rewrote the seed value, so cannot show as lost); colliding: ${f.colliding_edits}, of which not one of the two written values: ${f.colliding_not_one_of_two}${f.docs_in_conflict !== undefined ? `; docs left in conflict: ${f.docs_in_conflict}` : ''}`);
}

function w3Figures(r, m) {
  const { client_peak_rss_mb, client_phase_rss_peak_mb, ...rest } = r;
  return {
    ...rest, bytes: m.bytes_from_clients + m.bytes_to_clients, bytes_up: m.bytes_from_clients, bytes_down: m.bytes_to_clients,
    // One client process holds both replicas; lifetime peak includes setup and checks.
    client_peak_rss_mb, client_phase_rss_peak_mb, server_peak_rss_mb: m.server_peak_rss_mb,
    server_phase_rss_peak_mb: m.server_phase_rss_peak_mb,
  };
}

async function runPouch(dataRoot, rawJsonl) {
  const dir = path.join(dataRoot, 'pouchdb');
  fs.mkdirSync(path.join(dir, 'server'), { recursive: true });
  const procs = [];
  const spawn = (mod) => { const p = spawnRpc(path.join(here, mod), { cwd: dir }); procs.push(p); return p; };
  try {
    const srv = spawn('pouch_server.mjs');
    const { port } = await step(srv, 'start', { dataDir: path.join(dir, 'server') });
    const base = `http://127.0.0.1:${port}`;
    const load = await step(srv, 'load', { db: 'w1', seed: TERRITORY_SEED, scale: opts.scale });
    log(`pouchdb server loaded ${load.docs} docs with bulkDocs in ${load.seconds.toFixed(2)} s (untimed)`);

    const cli = spawn('pouch_client.mjs');
    await step(cli, 'configure', { batchSize: opts.pouchBatchSize, keepAlive: opts.pouchKeepAlive });
    const clientBase = await step(cli, 'rss');
    await step(srv, 'begin');
    const r1 = await step(cli, 'w1', { dataDir: dir, url: `${base}/w1` });
    const w1 = { ...w1Figures(r1, await step(srv, 'end'), load), client_baseline_rss_mb: clientBase.peak_rss_mb };
    printW1('pouchdb', w1, rawJsonl);

    await step(srv, 'begin');
    const cu = await step(cli, 'pushCatchUp', { url: `${base}/w1` });
    const mcu = await step(srv, 'end');
    w1.push_checkpoint_catch_up = { seconds: cu.seconds, docs_written: cu.docs_written, bytes_up: mcu.bytes_from_clients, bytes_down: mcu.bytes_to_clients };
    log(`pouchdb after W1, untimed: the first replicate.to, with nothing to send (${cu.docs_written} docs written), took ${cu.seconds.toFixed(2)} s, ${fmtMb(mcu.bytes_from_clients)} up, ${fmtMb(mcu.bytes_to_clients)} down`);

    const prep = await step(cli, 'w2prepare');
    await step(srv, 'begin');
    const r2 = await step(cli, 'w2push', { url: `${base}/w1` });
    const m2 = await step(srv, 'end');
    const ver = await step(srv, 'verify', { db: 'w1', docs: prep.expect });
    const w2 = {
      seconds: r2.seconds, docs_written: r2.docs_written, bytes_up: m2.bytes_from_clients, bytes_down: m2.bytes_to_clients,
      bytes_per_check: m2.bytes_from_clients / W2_VISITS, connections: m2.connections,
      server_verified: `${ver.ok}/${ver.of}`, client_peak_rss_mb: r2.client_peak_rss_mb,
      client_phase_rss_peak_mb: r2.client_phase_rss_peak_mb,
    };
    printW2('pouchdb', w2);
    await cli.close();

    // W3 in a fresh client process so its peak RSS is W3's alone.
    const cli3 = spawn('pouch_client.mjs');
    await step(cli3, 'configure', { batchSize: opts.pouchBatchSize, keepAlive: opts.pouchKeepAlive });
    await step(cli3, 'w3setup', { dataDir: dir, url: `${base}/w3`, scale: opts.scale });
    await step(srv, 'begin');
    const r3 = await step(cli3, 'w3sync', { url: `${base}/w3` });
    const w3 = w3Figures(r3, await step(srv, 'end'));
    printW3('pouchdb', w3);
    return {
      w1, w2, w3,
      replication_options: opts.pouchBatchSize ? { batch_size: opts.pouchBatchSize } : 'defaults (batch_size 100, batches_limit 10)',
      http_keep_alive: opts.pouchKeepAlive,
    };
  } finally {
    await Promise.all(procs.map((p) => withTimeout(p.close(), 10000, 'close').catch(() => p.kill())));
  }
}

async function runYjs(dataRoot, rawJsonl) {
  const dir = path.join(dataRoot, 'yjs');
  fs.mkdirSync(dir, { recursive: true });
  const procs = [];
  const spawn = (mod) => { const p = spawnRpc(path.join(here, mod), { cwd: dir }); procs.push(p); return p; };
  try {
    const srv = spawn('yjs_server.mjs');
    const { port } = await step(srv, 'start', { deflate: opts.yjsDeflate });
    const url = `ws://127.0.0.1:${port}`;
    const load = await step(srv, 'load', { room: 'w1', seed: TERRITORY_SEED, scale: opts.scale });
    log(`yjs server doc built with ${load.rows} rows in ${load.seconds.toFixed(2)} s (untimed); its full update is ${fmtMb(load.update_bytes)}`);

    const cli = spawn('yjs_client.mjs');
    const clientBase = await step(cli, 'rss');
    await step(srv, 'begin');
    const r1 = await step(cli, 'w1', { url, room: 'w1' });
    const w1 = { ...w1Figures(r1, await step(srv, 'end'), load), client_baseline_rss_mb: clientBase.peak_rss_mb, server_doc_update_bytes: load.update_bytes };
    printW1('yjs', w1, rawJsonl);

    const prep = await step(cli, 'w2prepare');
    await step(srv, 'armW2', { room: 'w1', expect: prep.expect });
    await step(srv, 'begin');
    const { start_ns } = await step(cli, 'w2connect');
    const done = await step(srv, 'w2done');
    const settle = await step(cli, 'w2settle');
    // Let the tail of the handshake (the relay's echo, awareness) land in the counters.
    await new Promise((r) => setTimeout(r, 200));
    const m2 = await step(srv, 'end');
    const w2 = {
      seconds: secondsBetween(start_ns, done.applied_ns), bytes_up: m2.bytes_from_clients, bytes_down: m2.bytes_to_clients,
      bytes_per_check: m2.bytes_from_clients / W2_VISITS, connections: m2.connections,
      server_verified: `${done.verified}/${prep.expect.length}`, client_peak_rss_mb: settle.client_peak_rss_mb,
      client_phase_rss_peak_mb: settle.client_phase_rss_peak_mb,
    };
    printW2('yjs', w2);
    await cli.close();

    const out = { w1, w2 };
    // W3 twice: columns as nested Y.Maps (the layout that merges per column),
    // then rows as plain JSON values, each in a fresh client process.
    for (const [variant, key, room] of [['cols', 'w3', 'w3'], ['json', 'w3_row_as_json', 'w3json']]) {
      const c = spawn('yjs_client.mjs');
      await step(c, 'w3setup', { url, room, scale: opts.scale, variant });
      await step(srv, 'begin');
      const r3 = await step(c, 'w3sync');
      await new Promise((r) => setTimeout(r, 200));
      out[key] = w3Figures(r3, await step(srv, 'end'));
      printW3(variant === 'cols' ? 'yjs' : 'yjs(row-as-json)', out[key]);
      await c.close();
    }
    out.per_message_deflate = opts.yjsDeflate;
    return out;
  } finally {
    await Promise.all(procs.map((p) => withTimeout(p.close(), 10000, 'close').catch(() => p.kill())));
  }
}

async function main() {
  fs.rmSync(opts.data, { recursive: true, force: true });
  fs.mkdirSync(opts.data, { recursive: true });
  const m = machine();
  const territory = makeTerritory(TERRITORY_SEED, opts.scale);
  const rawJsonl = territory.reduce((n, r) => n + Buffer.byteLength(JSON.stringify({ table: r.table, id: r.id, ...r.cols })) + 1, 0);
  log(`peers_bench: scale ${opts.scale}, W1 ${territory.length} records (${fmtMb(rawJsonl)} as JSONL), W2 ${makeDay().inserts.length} new rows + 8 account edits, W3 ${w3LineCount(opts.scale)} lines`);
  log(`machine: ${m.cpus} x ${m.cpu_model}, ${m.mem_gb} GiB, ${m.platform}, Debian ${m.debian}, Node ${m.node}`);
  const result = { machine: { ...m, w1_raw_jsonl_bytes: rawJsonl } };
  let failed = false;
  for (const [name, run] of [['pouchdb', runPouch], ['yjs', runYjs]]) {
    if (opts.only && opts.only !== name) continue;
    const t0 = process.hrtime.bigint();
    try {
      result[name] = await run(opts.data, rawJsonl);
      // Like fieldsync_bench, a W3 that did not converge fails the run.
      if (Object.keys(result[name]).some((k) => k.startsWith('w3') && !result[name][k].converged)) failed = true;
    } catch (err) {
      failed = true;
      console.error(`${name}: ${err.stack || err}`);
      result[name] = { error: String(err.message || err) };
    }
    result[name].total_run_seconds = secondsBetween(t0, process.hrtime.bigint());
    log(`${name}: whole run took ${result[name].total_run_seconds.toFixed(1)} s`);
  }
  fs.rmSync(opts.data, { recursive: true, force: true });
  result.machine.loadavg_at_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  log(`load average at start ${m.loadavg_at_start.join(' ')}, at end ${result.machine.loadavg_at_end.join(' ')}`);
  log(`orchestrator peak RSS ${mb(process.resourceUsage().maxRSS * 1024)} MB (not part of any figure)`);
  console.log('PEERS_JSON ' + JSON.stringify(result));
  process.exit(failed ? 1 : 0);
}

main().catch((err) => { console.error(err); process.exit(1); });
