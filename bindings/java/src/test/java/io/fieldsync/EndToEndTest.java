package io.fieldsync;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Java binding end to end, against a real server (bindings/java/run_test.sh
 * starts it): EndToEndTest URL SCHEMA_FILE DIR. Plain Java, no test framework.
 * Prints "N passed, 0 failed" and exits 0, or lists each failure and exits 1.
 */
public final class EndToEndTest {
  private static int passed;
  private static final List<String> failures = new ArrayList<String>();

  interface Body {
    void run() throws Exception;
  }

  interface Condition {
    boolean holds() throws Exception;
  }

  static void check(boolean ok, String what) {
    if (ok) {
      passed++;
    } else {
      failures.add(what);
      System.out.println("FAILED: " + what);
    }
  }

  static void expectError(int code, String what, Body body) {
    try {
      body.run();
      check(false, what + ": expected FieldSyncException " + FieldSyncException.codeName(code) + ", got none");
    } catch (FieldSyncException e) {
      check(e.code() == code,
          what + ": expected " + FieldSyncException.codeName(code) + ", got " + e.getMessage());
    } catch (Throwable t) {
      check(false, what + ": expected FieldSyncException " + FieldSyncException.codeName(code) + ", got " + t);
    }
  }

  static boolean waitFor(long millis, Condition c) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    while (true) {
      try {
        if (c.holds()) return true;
      } catch (FieldSyncException e) {
        // not yet (e.g. NOT_FOUND before the row arrives)
      } catch (Exception e) {
        return false;
      }
      if (System.nanoTime() > end) return false;
      Thread.sleep(20);
    }
  }

  static String state(Replica r) {
    Matcher m = Pattern.compile("\"state\":\"([a-z]+)\"").matcher(r.syncStatus());
    return m.find() ? m.group(1) : "?";
  }

  static String quote(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: EndToEndTest URL SCHEMA_FILE DIR");
      System.exit(2);
    }
    try {
      run(args[0], new String(Files.readAllBytes(Paths.get(args[1])), StandardCharsets.UTF_8), new File(args[2]));
    } catch (Throwable t) {
      System.out.println("FAILED: unexpected " + t);
      t.printStackTrace(System.out);
      failures.add(t.toString());
    }
    if (!failures.isEmpty()) {
      System.out.println(passed + " passed, " + failures.size() + " failed");
      System.exit(1);
    }
    System.out.println(passed + " passed, 0 failed");
  }

  @SuppressWarnings("try")  // resources closed twice on purpose, and held only to be closed
  static void run(final String url, final String schema, File dir) throws Exception {
    // ---- the library ----
    check(Replica.version().matches("\\d+\\.\\d+\\.\\d+"), "version() is x.y.z: " + Replica.version());
    check(Replica.protocolVersion() >= 1, "protocolVersion() >= 1");
    String id1 = Replica.newId(), id2 = Replica.newId();
    check(id1.length() == 36 && !id1.equals(id2), "newId() gives distinct UUIDs");
    expectError(FieldSyncException.SCHEMA_VIOLATION, "open with a schema that is not JSON",
        () -> Replica.open(new File(dir, "x.db").getPath(), "{not json"));
    expectError(FieldSyncException.INVALID_ARGUMENT, "open with a null path", () -> Replica.open(null, schema));

    final Replica[] opened = new Replica[2];
    final String text = "Gr\u00fc\u00dfe \uD83D\uDE80 \"quoted\" \\ back";  // beyond the BMP, escapes
    try (Replica a = Replica.open(new File(dir, "a.db").getPath(), schema);
         Replica b = Replica.open(new File(dir, "b.db").getPath(), schema)) {
      opened[0] = a;
      opened[1] = b;
      check(a.node().matches("[0-9a-f]{16}") && !a.node().equals(b.node()), "nodes are 16 hex digits, distinct");

      // ---- A writes offline ----
      a.put("store_checks", "chk1", "{\"status\":\"submitted\"}");
      a.put("visits", "v1", "{\"purpose\":" + quote(text) + "}");
      check(a.get("visits", "v1").contains("\"purpose\":" + quote(text)),
          "a string beyond the BMP reads back the same: " + a.get("visits", "v1"));
      check(a.syncStatus().contains("\"pending\":2"), "two writes pending on A: " + a.syncStatus());

      // ---- B syncs in the background and observes A's change ----
      final CountDownLatch seen = new CountDownLatch(1);
      final AtomicReference<String> remoteEvents = new AtomicReference<String>();
      final AtomicInteger stopFromObserver = new AtomicInteger();
      try (Subscription sub = b.addObserver(events -> {
        if (events.contains("\"id\":\"chk1\"") && events.contains("\"remote\":true") && seen.getCount() > 0) {
          remoteEvents.set(events + " on " + Thread.currentThread().getName());
          try {
            b.stopSync();  // would join the sync thread from itself
            stopFromObserver.set(-1);
          } catch (FieldSyncException e) {
            stopFromObserver.set(e.code());
          }
          seen.countDown();
        }
      })) {
        b.startSync(url);
        SyncReport rep = a.syncOnce(url);
        check(rep.pushed == 2 && rep.rejected == 0 && rep.bytesSent > 0 && rep.cursor > 0,
            "A.syncOnce pushed its two offline writes: " + rep);
        check(a.syncStatus().contains("\"pending\":0"), "nothing pending on A after sync: " + a.syncStatus());
        check(seen.await(10, TimeUnit.SECONDS), "B's observer saw A's change within 10 s");
        System.out.println("B observed: " + remoteEvents.get());
        check(stopFromObserver.get() == FieldSyncException.BUSY,
            "stopSync() inside an observer is refused with BUSY: " + stopFromObserver.get());
        check(b.get("store_checks", "chk1").contains("\"status\":\"submitted\""),
            "B.get returns A's row: " + b.get("store_checks", "chk1"));
        check(waitFor(10000, () -> b.get("visits", "v1").equals(a.get("visits", "v1"))),
            "the non-ASCII row arrives on B unchanged");

        // ---- mobile lifecycle ----
        b.appBackground();
        check(waitFor(10000, () -> state(b).equals("paused")), "appBackground pauses sync: " + b.syncStatus());
        b.appForeground();
        check(waitFor(10000, () -> state(b).equals("live")), "appForeground resumes sync: " + b.syncStatus());
        b.networkChanged(true);
      }
      b.stopSync();
      check(state(b).equals("stopped"), "stopSync stops: " + b.syncStatus());

      // ---- observers of local writes: on the caller's thread; may call back in; may throw ----
      final List<String> local = Collections.synchronizedList(new ArrayList<String>());
      final Thread me = Thread.currentThread();
      final boolean[] sameThread = {false};
      final String[] nested = {null};
      final int[] closeFromObserver = {0};
      try (Subscription s1 = a.addObserver(events -> {
             local.add(events);
             sameThread[0] = Thread.currentThread() == me;
             nested[0] = a.get("store_checks", "chk1");
             try {
               a.close();
             } catch (FieldSyncException e) {
               closeFromObserver[0] = e.code();
             }
           });
           Subscription s2 = a.addObserver(events -> {
             throw new IllegalStateException("an observer's exception must not break the write");
           })) {
        a.put("accounts", "acc1", "{\"name\":\"Metro\",\"phone\":\"1\"}");
        check(local.size() == 1 && local.get(0).contains("\"id\":\"acc1\"") && local.get(0).contains("\"remote\":false"),
            "a local write is observed once: " + local);
        check(sameThread[0], "a local write's observer runs on the writing thread");
        check(nested[0] != null && nested[0].contains("submitted"), "an observer can call back into the replica");
        check(closeFromObserver[0] == FieldSyncException.BUSY && !a.isClosed(),
            "close() inside an observer is refused with BUSY");
        check(a.get("accounts", "acc1").contains("Metro"), "a throwing observer does not break the write");
        s1.close();
        s1.close();  // twice is harmless
      }
      a.put("accounts", "acc2", "{\"name\":\"Walmart\",\"phone\":\"2\"}");
      check(local.size() == 1, "a closed subscription is not called again");
      expectError(FieldSyncException.INVALID_ARGUMENT, "addObserver(null)", () -> a.addObserver(null));

      // ---- query, increment, delete ----
      List<String> rows = a.query("accounts", "{\"where\":{\"phone\":\"2\"}}");
      check(rows.size() == 1 && rows.get(0).contains("\"id\":\"acc2\""), "query with where: " + rows);
      check(a.query("accounts").size() == 2, "query of all rows");
      check(a.query("accounts", "{\"order_by\":\"name\",\"descending\":true,\"limit\":1}").get(0).contains("Walmart"),
          "query with order_by, descending, limit");
      a.increment("goods_loans", "g1", "returned_qty", 3);
      check(a.get("goods_loans", "g1").contains("\"returned_qty\":3"), "increment: " + a.get("goods_loans", "g1"));
      a.put("accounts", "gone", "{\"name\":\"Gone\"}");
      a.delete("accounts", "gone");
      expectError(FieldSyncException.DELETED, "get of a deleted row", () -> a.get("accounts", "gone"));

      // ---- every error is a FieldSyncException with the C API's code ----
      expectError(FieldSyncException.INVALID_ARGUMENT, "invalid JSON", () -> a.put("accounts", "x", "{oops"));
      expectError(FieldSyncException.INVALID_ARGUMENT, "JSON that is not an object", () -> a.put("accounts", "x", "[1]"));
      expectError(FieldSyncException.NOT_FOUND, "an unknown table", () -> a.put("warehouses", "x", "{}"));
      expectError(FieldSyncException.SCHEMA_VIOLATION, "a wrong type",
          () -> a.put("accounts", "x", "{\"employees\":\"many\"}"));
      expectError(FieldSyncException.PERMISSION_DENIED, "a write to a reference table",
          () -> a.put("skus", "s", "{\"name\":\"x\"}"));
      expectError(FieldSyncException.SCHEMA_VIOLATION, "increment of a text column",
          () -> a.increment("accounts", "acc1", "phone", 1));
      expectError(FieldSyncException.NOT_FOUND, "get of a missing row", () -> a.get("accounts", "missing"));
      expectError(FieldSyncException.INVALID_ARGUMENT, "a null table", () -> a.put(null, "x", "{}"));
      expectError(FieldSyncException.INVALID_ARGUMENT, "a null JSON", () -> a.put("accounts", "x", null));
      expectError(FieldSyncException.INVALID_ARGUMENT, "an id containing U+0000",
          () -> a.put("accounts", "acc1\u0000x", "{\"phone\":\"9\"}"));
      expectError(FieldSyncException.NOT_FOUND, "a query on an unknown column",
          () -> a.query("accounts", "{\"where\":{\"colour\":\"red\"}}"));
      expectError(FieldSyncException.INVALID_ARGUMENT, "a query with a bad limit",
          () -> a.query("accounts", "{\"limit\":\"ten\"}"));
      expectError(FieldSyncException.NOT_FOUND, "restoreConflict of an unknown id", () -> a.restoreConflict(99));
      expectError(FieldSyncException.NOT_FOUND, "dismissConflict of an unknown id", () -> a.dismissConflict(99));
      expectError(FieldSyncException.INVALID_ARGUMENT, "syncOnce to an http URL", () -> a.syncOnce("http://nope/"));
      expectError(FieldSyncException.NOT_FOUND, "none of the failed writes landed", () -> a.get("accounts", "x"));
      check(a.get("accounts", "acc1").contains("\"phone\":\"1\""), "the U+0000 id did not write to acc1");
      check(a.conflicts(false).equals("[]") && a.rejections().equals("[]"), "no conflicts, no rejections");

      // ---- transactions ----
      try (Transaction t = a.newTransaction()) {
        t.put("visits", "v2", "{\"purpose\":\"audit\"}").addMember("contacts", "c1", "buying_roles", "decision_maker");
      }  // closed without commit: aborted
      expectError(FieldSyncException.NOT_FOUND, "a transaction closed without commit wrote nothing (v2)",
          () -> a.get("visits", "v2"));
      expectError(FieldSyncException.NOT_FOUND, "a transaction closed without commit wrote nothing (c1)",
          () -> a.get("contacts", "c1"));
      try (Transaction t = a.newTransaction()) {
        t.put("visits", "v2", "{\"purpose\":\"audit\"}")
            .addMember("contacts", "c1", "buying_roles", "decision_maker")
            .addMember("contacts", "c1", "buying_roles", "user")
            .removeMember("contacts", "c1", "buying_roles", "user")
            .increment("goods_loans", "g1", "returned_qty", 2);
        t.commit();
        expectError(FieldSyncException.CLOSED, "a committed transaction", () -> t.put("visits", "v9", "{}"));
      }
      check(a.get("visits", "v2").contains("audit"), "a committed transaction's put");
      check(a.get("contacts", "c1").contains("\"buying_roles\":[\"decision_maker\"]"),
          "a committed transaction's set members: " + a.get("contacts", "c1"));
      check(a.get("goods_loans", "g1").contains("\"returned_qty\":5"), "a committed transaction's increment");
      try (Transaction t = a.newTransaction()) {
        t.put("visits", "v3", "{\"purpose\":\"fine\"}").put("visits", "v4", "{\"status\":\"teleported\"}");
        expectError(FieldSyncException.SCHEMA_VIOLATION, "a commit with one bad write", t::commit);
        expectError(FieldSyncException.CLOSED, "a transaction whose commit failed", t::commit);
      }
      expectError(FieldSyncException.NOT_FOUND, "a failed commit wrote nothing", () -> a.get("visits", "v3"));
      try (Transaction t = a.newTransaction()) {
        t.delete("visits", "v2");
      }
      check(a.get("visits", "v2").contains("audit"), "an aborted delete deleted nothing");
    }

    // ---- everything closed ----
    for (final Replica r : opened) {
      check(r.isClosed(), "try-with-resources closed the replica");
      expectError(FieldSyncException.CLOSED, "get on a closed replica", () -> r.get("accounts", "acc1"));
    }

    // ---- a closed replica, and what was open on it, fail cleanly ----
    final Replica c = Replica.open(new File(dir, "c.db").getPath(), schema);
    final Transaction pending = c.newTransaction();
    pending.put("visits", "p1", "{}");
    Subscription cs = c.addObserver(events -> {});
    c.startSync(url);
    c.close();
    c.close();  // twice is harmless
    expectError(FieldSyncException.CLOSED, "put on a closed replica", () -> c.put("accounts", "a", "{}"));
    expectError(FieldSyncException.CLOSED, "get on a closed replica", () -> c.get("accounts", "a"));
    expectError(FieldSyncException.CLOSED, "query on a closed replica", () -> c.query("accounts"));
    expectError(FieldSyncException.CLOSED, "node on a closed replica", c::node);
    expectError(FieldSyncException.CLOSED, "syncStatus on a closed replica", c::syncStatus);
    expectError(FieldSyncException.CLOSED, "syncOnce on a closed replica", () -> c.syncOnce(url));
    expectError(FieldSyncException.CLOSED, "stopSync on a closed replica", c::stopSync);
    expectError(FieldSyncException.CLOSED, "appBackground on a closed replica", c::appBackground);
    expectError(FieldSyncException.CLOSED, "newTransaction on a closed replica", c::newTransaction);
    expectError(FieldSyncException.CLOSED, "addObserver on a closed replica", () -> c.addObserver(e -> {}));
    expectError(FieldSyncException.CLOSED, "a transaction of a closed replica",
        () -> pending.put("visits", "p2", "{}"));
    expectError(FieldSyncException.CLOSED, "commit of a transaction of a closed replica", pending::commit);
    pending.close();  // harmless
    cs.close();       // harmless

    // ---- close while other threads write and the sync thread delivers ----
    final Replica d = Replica.open(new File(dir, "d.db").getPath(), schema);
    final AtomicInteger calls = new AtomicInteger();
    final List<String> unexpected = Collections.synchronizedList(new ArrayList<String>());
    d.addObserver(events -> d.syncStatus());  // calls back in, until it is closed
    d.startSync(url);
    Thread[] writers = new Thread[2];
    for (int w = 0; w < writers.length; w++) {
      final int who = w;
      writers[w] = new Thread(() -> {
        for (int i = 0;; i++) {
          try {
            if (i % 2 == 0) {
              d.put("contacts", "w" + who + "-" + i, "{\"name\":\"n\"}");
            } else {
              try (Transaction t = d.newTransaction()) {
                t.increment("goods_loans", "g", "returned_qty", 1).commit();
              }
            }
            calls.incrementAndGet();
          } catch (FieldSyncException e) {
            if (e.code() != FieldSyncException.CLOSED) unexpected.add(e.toString());
            return;
          } catch (Throwable t) {
            unexpected.add(t.toString());
            return;
          }
        }
      });
      writers[w].start();
    }
    check(waitFor(10000, () -> calls.get() >= 40), "writers are writing");
    d.close();
    for (Thread t : writers) t.join(10000);
    check(!writers[0].isAlive() && !writers[1].isAlive(), "writers stop once the replica is closed");
    check(unexpected.isEmpty(), "closing under load raises only CLOSED: " + unexpected);
  }
}
