// How a FieldSync row maps to PouchDB: one document per row, id "table:rowid",
// columns as top-level fields. This is the layout the PouchDB docs recommend
// (small documents, meaningful _id) and what a port of our schema would use.
export const docId = (table, id) => `${table}:${id}`;
export const toDoc = ({ table, id, cols }) => ({ _id: docId(table, id), ...cols });
