// The stock y-websocket backend (@y/websocket-server's setupWSConnection) on
// a ws server: it keeps one Y.Doc per room in memory, answers the
// y-protocols sync handshake and relays updates to every connection in the room.
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { setupWSConnection, getYDoc } from '@y/websocket-server/utils';
import { serveRpc, meterServer, phaseMeter, nowNs, secondsBetween } from './common.mjs';
import { makeTerritory } from './workloads.mjs';
import { putRow, getRow, countRows, TABLES } from './yjs_model.mjs';
import * as Y from 'yjs';

let server, meter, watcher = null;

serveRpc({
  async start({ deflate }) {
    server = http.createServer((_req, res) => { res.writeHead(404); res.end(); });
    // perMessageDeflate is off by default on a ws server, so that is what a
    // y-websocket deployment gets unless someone turns it on (--yjs-deflate).
    const wss = new WebSocketServer({ server, perMessageDeflate: Boolean(deflate) });
    wss.on('connection', (conn, req) => setupWSConnection(conn, req, { gc: true }));
    meter = phaseMeter(meterServer(server));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: server.address().port };
  },

  // The central import, before timing: the server's room doc holds the territory.
  load({ room, seed, scale }) {
    const rows = makeTerritory(seed, scale);
    const t0 = nowNs();
    const doc = getYDoc(room);
    doc.transact(() => { for (const r of rows) putRow(doc, 'cols', r); });
    return { seconds: secondsBetween(t0, nowNs()), rows: countRows(doc, TABLES), update_bytes: Y.encodeStateAsUpdate(doc).length };
  },

  begin: () => meter.begin(),
  end: () => meter.end(),

  // W2's acknowledgement: y-websocket has no ack message, so the server itself
  // notes the moment its doc holds every row and field of the day's work.
  armW2({ room, expect }) {
    const doc = getYDoc(room);
    const done = () => expect.every((e) => {
      const row = getRow(doc, 'cols', e.table, e.id);
      return row && Object.entries(e.cols).every(([k, v]) => row[k] === v);
    });
    watcher = new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        doc.off('update', check);
        resolve({ applied_ns: String(nowNs()), rows: countRows(doc, TABLES), verified: expect.length });
      };
      doc.on('update', check);
      check();
    });
    return true;
  },
  w2done: () => watcher,
});
