// How a FieldSync row maps to Yjs. The main layout ("cols") is one top-level
// Y.Map per table, row id -> nested Y.Map of columns, so each column is its
// own last-writer-wins register and edits to different columns of a row
// merge. The "json" layout stores each row as one plain object value, the
// easy thing to write, which makes a whole row a single register (used only
// in W3 to show what that costs).
import * as Y from 'yjs';

export function putRow(doc, variant, { table, id, cols }) {
  const t = doc.getMap(table);
  if (variant === 'json') t.set(id, { ...cols });
  else t.set(id, new Y.Map(Object.entries(cols)));
}

// A field edit: one set per column in the "cols" layout; a read-modify-write
// of the whole row in the "json" layout. A missing row is created, like the
// C++ bench's Put (at small --scale the W2 accounts do not exist yet).
export function patchRow(doc, variant, { table, id, cols }) {
  const t = doc.getMap(table);
  if (variant === 'json') { t.set(id, { ...t.get(id), ...cols }); return; }
  const row = t.get(id);
  if (row === undefined) { t.set(id, new Y.Map(Object.entries(cols))); return; }
  for (const [k, v] of Object.entries(cols)) row.set(k, v);
}

export function getRow(doc, variant, table, id) {
  const r = doc.getMap(table).get(id);
  if (r === undefined) return undefined;
  return variant === 'json' ? r : r.toJSON();
}

export function countRows(doc, tables) {
  let n = 0;
  for (const t of tables) n += doc.getMap(t).size;
  return n;
}

export const TABLES = ['skus', 'accounts', 'contacts', 'visits', 'store_checks', 'store_check_lines'];
