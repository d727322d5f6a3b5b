// The field-sales workloads of bench/sync_bench.cc (W1-W3), regenerated in
// JavaScript. Sizes, tables, columns and value shapes follow the C++ bench;
// the values themselves come from a different PRNG (mulberry32), so they
// are deterministic here but not byte-identical to the C++ run.
//
// Rows are plain {table, id, cols} objects so each peer can map them to its
// own model (a PouchDB document, a Y.Map of columns, ...).

// mulberry32: tiny, fast, and good enough to pick benchmark values.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const CHANNELS = ['hypermarket', 'supermarket', 'distributor', 'pharmacy'];
const STOCK = ['short', 'normal', 'overstock'];
export const LINES_PER_CHECK = 30;

// Base counts at scale 1; scaled the same way as the C++ bench (floor, at least 1).
export function territoryCounts(scale) {
  const n = (base) => Math.max(1, Math.floor(base * scale));
  return { skus: n(1000), accounts: n(500), contacts: n(1500), visits: n(2000) };
}

// W1: one rep's territory.
export function makeTerritory(seed, scale) {
  const next = mulberry32(seed);
  const pick = (k) => next() % k;
  const { skus, accounts, contacts, visits } = territoryCounts(scale);
  const rows = [];
  const add = (table, id, cols) => rows.push({ table, id, cols });
  for (let i = 0; i < skus; ++i)
    add('skus', `sku-${i}`, {
      code: `C${100000 + i}`, name: `Product ${i} 500 ml`, spec: '12 x 500 ml',
      barcode: String(6900000000000 + i), brand: `Brand ${i % 17}`, category: `Category ${i % 23}`,
      unit: 'bottle', list_price: 5 + (i % 300) / 10, ka_price: 4 + (i % 300) / 10,
      active: true,
    });
  for (let i = 0; i < accounts; ++i)
    add('accounts', `acc-${i}`, {
      name: `Store ${i}`, code: `A${5000 + i}`, channel: CHANNELS[i % 4], chain: `Chain ${i % 9}`,
      account_class: i % 5 === 0 ? 'A' : 'B', status: 'active',
      address: `${i} Renmin Road, District ${i % 12}`, city: 'Changsha', region: 'Hunan',
      postcode: String(410000 + (i % 100)), phone: `0731-${8000000 + i}`, fax: `0731-${9000000 + i}`,
      email: `store${i}@example.com`, store_area_m2: 800 + pick(12000), employees: 10 + pick(300),
      bank_name: 'Bank of Changsha', bank_account: String(6222000000000000n + BigInt(i)),
      legal_representative: `Rep ${i}`, payment_terms: '30 days', file_stage: 'approved',
    });
  for (let i = 0; i < contacts; ++i)
    add('contacts', `ct-${i}`, {
      account_id: `acc-${i % accounts}`, name: `Contact ${i}`,
      position: i % 3 ? 'Section head' : 'Store manager',
      phone: `0731-${7000000 + i}`, mobile: `139${10000000 + i}`,
    });
  for (let i = 0; i < visits; ++i) {
    const acc = `acc-${i % accounts}`, v = `visit-${i}`, chk = `chk-${i}`;
    const day = `2026-11-${10 + (i % 18)}`;
    add('visits', v, {
      account_id: acc, rep: 'rep-1', planned_date: day, purpose: 'store check', status: 'completed',
      summary: `Shelf tidy, promo display in place, ${pick(9)} gaps`,
    });
    add('store_checks', chk, {
      account_id: acc, visit_id: v, checked_at: day, display_to_standard: i % 4 !== 0, status: 'submitted',
    });
    for (let l = 0; l < LINES_PER_CHECK; ++l)
      add('store_check_lines', `${chk}-${l}`, {
        store_check_id: chk, sku_id: `sku-${pick(skus)}`, on_shelf: pick(10) !== 0, facings: pick(12),
        shelf_price: 5 + pick(300) / 10, promo_price: 4 + pick(300) / 10, stock_status: STOCK[pick(3)],
        stock_qty: pick(200), pop_present: pick(2) === 0, competitor_note: pick(4) ? '' : 'competitor promo -10%',
      });
  }
  return rows;
}

// W2: a day's work made offline. New rows are partial (only the columns a
// rep fills in), account edits are three-field patches, as in the C++ bench.
export const W2_VISITS = 8;
export function makeDay() {
  const inserts = [];
  for (let v = 0; v < W2_VISITS; ++v) {
    const vid = `w2-visit-${v}`, chk = `w2-chk-${v}`;
    inserts.push({ table: 'visits', id: vid, cols: { account_id: `acc-${v}`, status: 'completed', purpose: 'store check' } });
    inserts.push({ table: 'store_checks', id: chk, cols: { account_id: `acc-${v}`, visit_id: vid, status: 'submitted' } });
    for (let l = 0; l < LINES_PER_CHECK; ++l)
      inserts.push({
        table: 'store_check_lines', id: `${chk}-${l}`,
        cols: {
          store_check_id: chk, sku_id: `sku-${l}`, on_shelf: true, facings: l % 7, shelf_price: 9.9,
          stock_status: 'normal', stock_qty: 20 + l, pop_present: l % 2 === 0,
        },
      });
  }
  const patches = [];
  for (let a = 0; a < 8; ++a)
    patches.push({ table: 'accounts', id: `acc-${100 + a}`, cols: { phone: '0731-1234567', employees: 42, payment_terms: '45 days' } });
  return { inserts, patches };
}

// W3: the same lines on two replicas, then 3 random columns changed per line
// on each side. One PRNG is shared by both sides, A first, exactly like the
// C++ bench, so A's and B's column choices differ and only some collide.
export const W3_COLS = ['facings', 'stock_qty', 'shelf_price', 'promo_price', 'on_shelf', 'stock_status'];
export function w3LineCount(scale) { return Math.max(1, Math.floor(10000 * scale)); }
export function w3Id(l) { return `w3-${l}`; }
export function w3Seed() {
  return { facings: 1, stock_qty: 1, shelf_price: 1.0, promo_price: 1.0, on_shelf: true, stock_status: 'normal' };
}
function w3Value(col, who) {
  if (col === 'on_shelf') return who === 0;
  if (col === 'stock_status') return who === 0 ? 'short' : 'overstock';
  return 2 + who; // prices and counts alike, as in the C++ bench
}
// Returns [editsA, editsB]: per line, a {col: value} patch.
export function w3Edits(lines) {
  const next = mulberry32(7);
  const side = (who) => {
    const out = new Array(lines);
    for (let l = 0; l < lines; ++l) {
      const f = {};
      const first = next() % 6;
      for (let k = 0; k < 3; ++k) {
        const c = W3_COLS[(first + k * (1 + (next() % 2))) % 6];
        f[c] = w3Value(c, who);
      }
      out[l] = f;
    }
    return out;
  };
  const a = side(0);
  const b = side(1);
  return [a, b];
}

// Lost updates: an edit to a column that only one side changed must survive
// the merge; for a column both sides changed, the result must be one of the
// two written values. `get(l)` returns the converged row's columns.
// A's on_shelf=true equals the seed value, so such an edit can never show as
// lost; those are counted apart (noop) so the lost ratio can be read fairly.
export function scoreW3(editsA, editsB, get) {
  const seed = w3Seed();
  let nonColliding = 0, noop = 0, lost = 0, colliding = 0, collidingBad = 0;
  for (let l = 0; l < editsA.length; ++l) {
    const row = get(l) || {};
    const a = editsA[l], b = editsB[l];
    for (const c of W3_COLS) {
      const inA = c in a, inB = c in b;
      if (inA && inB) {
        ++colliding;
        if (row[c] !== a[c] && row[c] !== b[c]) ++collidingBad;
      } else if (inA || inB) {
        ++nonColliding;
        if ((inA ? a[c] : b[c]) === seed[c]) ++noop;
        if (row[c] !== (inA ? a[c] : b[c])) ++lost;
      }
    }
  }
  return { non_colliding_edits: nonColliding, non_colliding_noop_edits: noop, lost_updates: lost, colliding_edits: colliding, colliding_not_one_of_two: collidingBad };
}
