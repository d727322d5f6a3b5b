// The PouchDB replica: a LevelDB-backed PouchDB (the Node default adapter, the
// closest thing to our SQLite replica on disk) replicating with the server
// over HTTP on loopback. One process per run so its peak RSS is its own.
import http from 'node:http';
import path from 'node:path';
import PouchDB from 'pouchdb';
import { serveRpc, nowNs, secondsBetween, peakRssMb, rssSampler } from './common.mjs';
import { makeDay, w3LineCount, w3Id, w3Seed, w3Edits, scoreW3 } from './workloads.mjs';
import { docId, toDoc } from './pouch_model.mjs';

let local, replA, replB, edits;
let replOpts = {}; // PouchDB defaults unless --pouch-batch-size is given
let agent = new http.Agent({ keepAlive: true });

// PouchDB's Node HTTP layer (node-fetch) sends "Connection: close" unless it
// is handed an agent, so every request would pay a TCP handshake. Browsers,
// where a field app's PouchDB would really run, keep connections alive, so
// by default we do too (--pouch-no-keepalive restores the Node default).
const remote = (url) => new PouchDB(url, {
  fetch: (u, o) => PouchDB.fetch(u, agent ? { ...o, agent } : o),
});

const sync = (db, url) => db.sync(remote(url), replOpts);

serveRpc({
  configure({ batchSize, keepAlive }) {
    if (batchSize) replOpts = { batch_size: batchSize };
    if (!keepAlive) agent = null;
    return { replOpts, keepAlive: Boolean(agent) };
  },

  // W1: a fresh replica pulls the whole territory.
  async w1({ dataDir, url }) {
    local = new PouchDB(path.join(dataDir, 'client-w1'));
    const rss = rssSampler();
    const t0 = nowNs();
    const res = await local.replicate.from(remote(url), replOpts);
    const seconds = secondsBetween(t0, nowNs());
    const client_phase_rss_peak_mb = rss();
    const info = await local.info();
    return { seconds, docs: info.doc_count, docs_written: res.docs_written, client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb };
  },

  // Untimed, between W1 and W2: the push direction has its own checkpoint,
  // so its first run walks every pulled document through _revs_diff. An app
  // running PouchDB.sync live pays that once, during bootstrap; doing it here
  // keeps W2 to the day's work alone. Reported apart by the orchestrator.
  async pushCatchUp({ url }) {
    const t0 = nowNs();
    const res = await local.replicate.to(remote(url), replOpts);
    return { seconds: secondsBetween(t0, nowNs()), docs_written: res.docs_written };
  },

  // W2, offline part: inserts are new documents; an account edit is a new
  // revision of the whole account document (PouchDB has no field patches).
  async w2prepare() {
    const { inserts, patches } = makeDay();
    const res = await local.bulkDocs(inserts.map(toDoc));
    if (res.some((r) => r.error)) throw new Error('w2 inserts failed');
    const expect = inserts.map(toDoc);
    for (const p of patches) {
      const _id = docId(p.table, p.id);
      // A missing row is created, like the C++ bench's Put (small --scale).
      const doc = await local.get(_id).catch((e) => { if (e.status === 404) return { _id }; throw e; });
      await local.put({ ...doc, ...p.cols });
      expect.push({ _id, ...p.cols });
    }
    return { expect };
  },

  // W2, the push: done when replicate.to resolves, i.e. the server has
  // answered _bulk_docs and the checkpoint is written.
  async w2push({ url }) {
    const rss = rssSampler();
    const t0 = nowNs();
    const res = await local.replicate.to(remote(url), replOpts);
    const seconds = secondsBetween(t0, nowNs());
    return { seconds, docs_written: res.docs_written, client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb: rss() };
  },

  // W3 setup (untimed): A seeds the lines and pushes them, B pulls them, then
  // both edit offline.
  async w3setup({ dataDir, url, scale }) {
    const lines = w3LineCount(scale);
    replA = new PouchDB(path.join(dataDir, 'client-w3a'));
    replB = new PouchDB(path.join(dataDir, 'client-w3b'));
    const seedDocs = [];
    for (let l = 0; l < lines; ++l) seedDocs.push({ _id: docId('store_check_lines', w3Id(l)), ...w3Seed() });
    for (let i = 0; i < seedDocs.length; i += 1000) await replA.bulkDocs(seedDocs.slice(i, i + 1000));
    await replA.replicate.to(remote(url), replOpts);
    await replB.replicate.from(remote(url), replOpts);
    // Catch up each side's other direction too (see pushCatchUp), so W3's
    // syncs carry the edits and not a first walk over the seed.
    await sync(replA, url);
    await sync(replB, url);
    edits = w3Edits(lines);
    for (const [db, side] of [[replA, edits[0]], [replB, edits[1]]]) {
      const all = await db.allDocs({ include_docs: true, keys: seedDocs.map((d) => d._id) });
      const docs = all.rows.map((r, l) => ({ ...r.doc, ...side[l] }));
      for (let i = 0; i < docs.length; i += 1000) {
        const res = await db.bulkDocs(docs.slice(i, i + 1000));
        if (res.some((r) => r.error)) throw new Error('w3 edits failed');
      }
    }
    return { lines };
  },

  // W3 sync: A, B, A (as the C++ bench), then more rounds only if the two
  // winners still differ. Only the syncs are timed.
  async w3sync({ url }) {
    let seconds = 0, rounds = 0, equal = false, conflicts = 0, client_phase_rss_peak_mb = null;
    let winners = null;
    const order = [replA, replB, replA];
    const rss = rssSampler();
    while (!equal && rounds < 5) {
      for (const db of order) {
        const t0 = nowNs();
        await sync(db, url);
        seconds += secondsBetween(t0, nowNs());
      }
      // Memory of the syncs themselves, before the checks' big allDocs reads.
      if (++rounds === 1) client_phase_rss_peak_mb = rss();
      const [a, b] = await Promise.all([replA, replB].map((db) => db.allDocs({ include_docs: true, conflicts: true })));
      equal = a.rows.length === b.rows.length && a.rows.every((r, i) => r.id === b.rows[i].id && r.value.rev === b.rows[i].value.rev);
      conflicts = a.rows.filter((r) => r.doc._conflicts?.length).length;
      winners = new Map(a.rows.map((r) => [r.id, r.doc]));
    }
    const score = scoreW3(edits[0], edits[1], (l) => winners.get(docId('store_check_lines', w3Id(l))));
    return { seconds, rounds, converged: equal, docs_in_conflict: conflicts, ...score, client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb };
  },
});
