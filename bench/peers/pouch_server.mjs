// express-pouchdb: the CouchDB replication protocol served by PouchDB on
// LevelDB, the server a PouchDB user would stand up without running CouchDB.
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import expressPouchDB from 'express-pouchdb';
import PouchDB from 'pouchdb';
import { serveRpc, meterServer, phaseMeter, nowNs, secondsBetween } from './common.mjs';
import { makeTerritory } from './workloads.mjs';
import { toDoc } from './pouch_model.mjs';

let ServerPouch, server, meter;

serveRpc({
  async start({ dataDir }) {
    ServerPouch = PouchDB.defaults({ prefix: dataDir + path.sep });
    const app = express();
    // minimumForPouchDB drops Fauxton, auth and the rest of CouchDB's admin
    // surface; inMemoryConfig keeps it from writing config.json and a log file.
    app.use('/', expressPouchDB(ServerPouch, { mode: 'minimumForPouchDB', inMemoryConfig: true }));
    server = http.createServer(app);
    meter = phaseMeter(meterServer(server));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: server.address().port };
  },

  // The central import, done before any timing: the territory as it would sit
  // on a CouchDB that the back office had filled.
  async load({ db, seed, scale }) {
    const rows = makeTerritory(seed, scale);
    const t0 = nowNs();
    const target = new ServerPouch(db);
    for (let i = 0; i < rows.length; i += 1000) {
      const res = await target.bulkDocs(rows.slice(i, i + 1000).map(toDoc));
      const bad = res.find((r) => r.error);
      if (bad) throw new Error(`load: ${JSON.stringify(bad)}`);
    }
    const info = await target.info();
    return { seconds: secondsBetween(t0, nowNs()), docs: info.doc_count };
  },

  begin: () => meter.begin(),
  end: () => meter.end(),

  // Confirms the push landed: every id is on the server with the expected fields.
  async verify({ db, docs }) {
    const res = await new ServerPouch(db).allDocs({ keys: docs.map((d) => d._id), include_docs: true });
    let ok = 0;
    res.rows.forEach((r, i) => {
      const want = docs[i];
      if (r.doc && Object.keys(want).every((k) => k === '_id' || r.doc[k] === want[k])) ++ok;
    });
    return { ok, of: docs.length, doc_count: (await new ServerPouch(db).info()).doc_count };
  },
});
