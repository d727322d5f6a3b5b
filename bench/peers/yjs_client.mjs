// The Yjs replica: a Y.Doc synced by y-websocket's WebsocketProvider over a
// real WebSocket on loopback. Yjs has no standard on-disk store for Node, so
// the doc lives in memory (see README: this favours Yjs on time).
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import { serveRpc, nowNs, secondsBetween, peakRssMb, withTimeout, rssSampler } from './common.mjs';
import { makeDay, w3LineCount, w3Id, w3Seed, w3Edits, scoreW3 } from './workloads.mjs';
import { putRow, patchRow, getRow, countRows, TABLES } from './yjs_model.mjs';

const TIMEOUT_MS = 20 * 60 * 1000;

function provider(url, room, doc) {
  // disableBc: two providers in one process would otherwise also talk over a
  // BroadcastChannel and bypass the network entirely.
  return new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, connect: false });
}

const whenSynced = (p) => new Promise((resolve) => {
  if (p.synced) return resolve();
  const h = (s) => { if (s) { p.off('sync', h); resolve(); } };
  p.on('sync', h);
});

const whenDisconnected = (p) => new Promise((resolve) => {
  if (!p.wsconnected && !p.wsconnecting) return resolve();
  const h = ({ status }) => { if (status === 'disconnected') { p.off('status', h); resolve(); } };
  p.on('status', h);
  p.disconnect();
});

// Both docs have integrated the same operations once their state vectors match.
function whenEqual(a, b) {
  const same = () => Buffer.compare(Buffer.from(Y.encodeStateVector(a)), Buffer.from(Y.encodeStateVector(b))) === 0;
  return new Promise((resolve) => {
    const check = () => {
      if (!same()) return;
      a.off('update', check); b.off('update', check);
      resolve(nowNs());
    };
    a.on('update', check); b.on('update', check);
    check();
  });
}

// Key order inside a Y.Map follows integration order, so compare canonically.
function sameRows(a, b) {
  const ja = a.toJSON(), jb = b.toJSON();
  const ka = Object.keys(ja);
  if (ka.length !== Object.keys(jb).length) return false;
  return ka.every((k) => {
    const ra = ja[k], rb = jb[k];
    if (!rb) return false;
    const cols = Object.keys(ra);
    return cols.length === Object.keys(rb).length && cols.every((c) => ra[c] === rb[c]);
  });
}

let doc, prov, w3 = null, w2rss = null;

serveRpc({
  // W1: a fresh doc connects and receives the room's whole state.
  async w1({ url, room }) {
    doc = new Y.Doc();
    prov = provider(url, room, doc);
    const rss = rssSampler();
    const t0 = nowNs();
    prov.connect();
    await withTimeout(whenSynced(prov), TIMEOUT_MS, 'yjs w1');
    const seconds = secondsBetween(t0, nowNs());
    return { seconds, rows: countRows(doc, TABLES), client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb: rss() };
  },

  // W2, offline part: go offline, then record the day's work in the doc.
  async w2prepare() {
    await whenDisconnected(prov);
    const { inserts, patches } = makeDay();
    doc.transact(() => {
      for (const r of inserts) putRow(doc, 'cols', r);
      for (const p of patches) patchRow(doc, 'cols', p);
    });
    return { expect: [...inserts, ...patches] };
  },

  // W2, the push: reconnecting runs the sync handshake, which carries the
  // offline updates up. The orchestrator times it up to the server's own note.
  w2connect() {
    w2rss = rssSampler();
    const t0 = nowNs();
    prov.connect();
    return { start_ns: String(t0) };
  },
  async w2settle() {
    await withTimeout(whenSynced(prov), TIMEOUT_MS, 'yjs w2 sync');
    return { client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb: w2rss() };
  },

  // W3 setup (untimed): A seeds the lines and syncs them up, B syncs them
  // down, both go offline and edit. Fixed client ids make the
  // colliding-column winners the same run to run.
  async w3setup({ url, room, scale, variant }) {
    const lines = w3LineCount(scale);
    const a = new Y.Doc(), b = new Y.Doc();
    a.clientID = 1001; b.clientID = 1002;
    a.transact(() => {
      for (let l = 0; l < lines; ++l) putRow(a, variant, { table: 'store_check_lines', id: w3Id(l), cols: w3Seed() });
    });
    const pa = provider(url, room, a), pb = provider(url, room, b);
    pa.connect();
    await withTimeout(whenSynced(pa), TIMEOUT_MS, 'w3 seed A');
    const seeded = whenEqual(a, b);
    pb.connect();
    await withTimeout(seeded, TIMEOUT_MS, 'w3 seed B');
    await Promise.all([whenDisconnected(pa), whenDisconnected(pb)]);
    const edits = w3Edits(lines);
    for (const [d, side] of [[a, edits[0]], [b, edits[1]]])
      d.transact(() => {
        side.forEach((cols, l) => patchRow(d, variant, { table: 'store_check_lines', id: w3Id(l), cols }));
      });
    w3 = { a, b, pa, pb, edits, variant };
    return { lines };
  },

  // W3 sync: A comes online, then B; done when both docs hold the same state.
  async w3sync() {
    const { a, b, pa, pb, edits, variant } = w3;
    const equal = whenEqual(a, b);
    const rss = rssSampler();
    const t0 = nowNs();
    pa.connect();
    await withTimeout(whenSynced(pa), TIMEOUT_MS, 'w3 A sync');
    pb.connect();
    const t1 = await withTimeout(equal, TIMEOUT_MS, 'w3 converge');
    const seconds = secondsBetween(t0, t1);
    const client_phase_rss_peak_mb = rss();
    await whenSynced(pb);
    const converged = sameRows(a.getMap('store_check_lines'), b.getMap('store_check_lines'));
    const score = scoreW3(edits[0], edits[1], (l) => getRow(a, variant, 'store_check_lines', w3Id(l)));
    return { seconds, converged, ...score, client_peak_rss_mb: peakRssMb(), client_phase_rss_peak_mb };
  },
});
