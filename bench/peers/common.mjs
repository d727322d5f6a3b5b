// Plumbing shared by the orchestrator and its child processes: a tiny
// request/response protocol over the fork() IPC channel, a wire-byte meter
// on the server's sockets, and memory figures.
import { fork } from 'node:child_process';

// process.hrtime is CLOCK_MONOTONIC, shared by all processes on the box, so a
// start taken in the client and an end taken in the server can be subtracted.
export const nowNs = () => process.hrtime.bigint();
export const secondsBetween = (a, b) => Number(BigInt(b) - BigInt(a)) / 1e9;

export const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
export const peakRssMb = () => mb(process.resourceUsage().maxRSS * 1024); // maxRSS is in KiB

// Child side: serve named handlers until told to exit.
export function serveRpc(handlers) {
  process.on('message', async (msg) => {
    if (msg.cmd === 'exit') process.exit(0);
    try {
      if (msg.cmd === 'rss') return process.send({ id: msg.id, result: { peak_rss_mb: peakRssMb(), rss_mb: mb(process.memoryUsage.rss()) } });
      const result = await handlers[msg.cmd](msg.args ?? {});
      process.send({ id: msg.id, result });
    } catch (err) {
      process.send({ id: msg.id, error: String(err?.stack || err) });
    }
  });
}

// Parent side: fork a module and get an async call(cmd, args).
export function spawnRpc(modulePath, opts = {}) {
  const child = fork(modulePath, opts.args ?? [], { cwd: opts.cwd, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let seq = 0;
  const pending = new Map();
  child.on('message', (msg) => {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${modulePath}: ${msg.error}`));
    else p.resolve(msg.result);
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`${modulePath} exited with ${code}`));
    pending.clear();
  });
  const call = (cmd, args) => new Promise((resolve, reject) => {
    const id = ++seq;
    pending.set(id, { resolve, reject });
    child.send({ id, cmd, args });
  });
  const close = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.send({ cmd: 'exit' });
  });
  const kill = () => { if (child.exitCode === null) child.kill(); };
  return { call, close, kill, child };
}

// Counts every byte the server's sockets read and wrote, HTTP and WebSocket
// alike (an upgraded WebSocket keeps the same net.Socket). Sockets that
// closed are folded into running totals so keep-alive and short-lived
// connections are both covered.
export function meterServer(httpServer) {
  const live = new Set();
  let closedRead = 0, closedWritten = 0, connections = 0;
  httpServer.on('connection', (sock) => {
    ++connections;
    live.add(sock);
    sock.on('close', () => {
      closedRead += sock.bytesRead;
      closedWritten += sock.bytesWritten;
      live.delete(sock);
    });
  });
  return () => {
    let read = closedRead, written = closedWritten;
    for (const s of live) { read += s.bytesRead; written += s.bytesWritten; }
    return { read, written, connections };
  };
}

// Samples resident memory during one phase: maxRSS is a lifetime high-water
// mark, which on the server is usually set by loading the data, not serving it.
export function rssSampler(intervalMs = 20) {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, intervalMs);
  return () => { clearInterval(t); return mb(Math.max(peak, process.memoryUsage.rss())); };
}

// Phase bookkeeping for a server process: bytes and memory between begin() and end().
export function phaseMeter(snapshot) {
  let start = null, stopSampler = null;
  return {
    begin() { start = snapshot(); stopSampler = rssSampler(); return true; },
    end() {
      const s = snapshot();
      return {
        bytes_from_clients: s.read - start.read,
        bytes_to_clients: s.written - start.written,
        connections: s.connections - start.connections,
        server_phase_rss_peak_mb: stopSampler(),
        server_peak_rss_mb: peakRssMb(),
      };
    },
  };
}

export function withTimeout(promise, ms, what) {
  let t;
  const timer = new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000}s`)), ms); });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}
