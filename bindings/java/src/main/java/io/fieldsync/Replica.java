package io.fieldsync;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open local replica: a SQLite file that works offline and syncs with a
 * FieldSync server (the C API's {@code fs_replica}). Records are JSON text.
 *
 * <p>Thread-safe: any thread may call any method; the library serializes
 * calls on one replica. {@link #close()} waits for calls under way on other
 * threads, then stops background sync and closes the file; afterwards every
 * method throws {@link FieldSyncException} with code
 * {@link FieldSyncException#CLOSED}. Close it (try-with-resources): an open
 * replica, and the observers registered on it, are not reclaimed by GC.
 */
public final class Replica implements AutoCloseable {
  private final Object lock = new Object();
  private long handle;       // the fs_replica*; 0 once closed (guarded by lock)
  private boolean closing;   // set when close() starts: new calls are refused (guarded by lock)
  private int inFlight;      // native calls under way, on any thread (guarded by lock)
  private final Map<Transaction, Boolean> openTxns = new IdentityHashMap<Transaction, Boolean>();
  private final List<Subscription> subscriptions = new ArrayList<Subscription>();
  // This thread's calls into this replica and observer callbacks from it, nested:
  // close() and stopSync() from inside them would wait on themselves.
  private final ThreadLocal<int[]> depth = new ThreadLocal<int[]>() {
    @Override
    protected int[] initialValue() {
      return new int[1];
    }
  };

  private Replica(long handle) {
    this.handle = handle;
  }

  /** Opens or creates the replica file at {@code path} for the schema document {@code schemaJson}. */
  public static Replica open(String path, String schemaJson) {
    return new Replica(Native.open(path, schemaJson));
  }

  /** The library version, e.g. "0.1.0". */
  public static String version() {
    return Native.version();
  }

  /** The wire protocol version spoken. */
  public static int protocolVersion() {
    return Native.protocolVersion();
  }

  /** A fresh random id (UUIDv4) for a new row. */
  public static String newId() {
    return Native.newId();
  }

  /** This replica's node id as 16 hex digits. */
  public String node() {
    long h = enter();
    try {
      return Native.node(h);
    } finally {
      exit();
    }
  }

  // ---- records ---------------------------------------------------------------

  /** Sets the given fields of one row, creating it: {@code fieldsJson} is an object {column: value}. */
  public void put(String table, String id, String fieldsJson) {
    long h = enter();
    try {
      Native.put(h, table, id, fieldsJson);
    } finally {
      exit();
    }
  }

  /** The row as a JSON object; NOT_FOUND if there is none, DELETED if it was deleted. */
  public String get(String table, String id) {
    long h = enter();
    try {
      return Native.get(h, table, id);
    } finally {
      exit();
    }
  }

  public void delete(String table, String id) {
    long h = enter();
    try {
      Native.delete(h, table, id);
    } finally {
      exit();
    }
  }

  /** Adds {@code delta} to a counter column. */
  public void increment(String table, String id, String column, double delta) {
    long h = enter();
    try {
      Native.increment(h, table, id, column, delta);
    } finally {
      exit();
    }
  }

  /**
   * Rows of {@code table}, each a JSON object, matching {@code queryJson}
   * (null for all): {"where": {column: value...}, "order_by": "col",
   * "descending": bool, "limit": n, "offset": n}.
   */
  public List<String> query(String table, String queryJson) {
    long h = enter();
    try {
      return Collections.unmodifiableList(Arrays.asList(Native.query(h, table, queryJson)));
    } finally {
      exit();
    }
  }

  public List<String> query(String table) {
    return query(table, null);
  }

  /** A transaction; nothing is written until its commit(). */
  public Transaction newTransaction() {
    long h = enter();
    try {
      Transaction t = new Transaction(this, Native.txnBegin(h));
      synchronized (lock) {
        openTxns.put(t, Boolean.TRUE);
      }
      return t;
    } finally {
      exit();
    }
  }

  // ---- observers -------------------------------------------------------------

  /** Calls {@code observer} after every committed change, local or remote, until the subscription is closed. */
  public Subscription addObserver(Observer observer) {
    if (observer == null) throw new FieldSyncException(FieldSyncException.INVALID_ARGUMENT, "observer is null");
    long h = enter();
    try {
      Subscription s = new Subscription(this, Native.observerAdd(h, new Dispatch(this, observer)));
      synchronized (lock) {
        subscriptions.add(s);
      }
      return s;
    } finally {
      exit();
    }
  }

  void removeObserver(Subscription s) {
    long h;
    synchronized (lock) {
      if (s.removed) return;
      s.removed = true;
      if (closing) return;  // close() frees every observer
      h = handle;
      inFlight++;
    }
    depth.get()[0]++;
    try {
      Native.observerRemove(h, s.slot);  // the record itself is freed by close()
    } finally {
      exit();
    }
  }

  /** What the JNI layer calls: marks this thread as inside an observer of this replica. */
  private static final class Dispatch implements Observer {
    private final Replica replica;
    private final Observer target;

    Dispatch(Replica replica, Observer target) {
      this.replica = replica;
      this.target = target;
    }

    @Override
    public void onChange(String eventsJson) {
      int[] d = replica.depth.get();
      d[0]++;
      try {
        target.onChange(eventsJson);
      } finally {
        d[0]--;
      }
    }
  }

  // ---- sync --------------------------------------------------------------------

  /** One exchange with the server at {@code url} (ws://host:port/): push local changes, pull remote ones. */
  public SyncReport syncOnce(String url) {
    long h = enter();
    try {
      return new SyncReport(Native.syncOnce(h, url));
    } finally {
      exit();
    }
  }

  /** Background sync: keeps a connection, pushes writes as they happen, receives live changes, reconnects with backoff. */
  public void startSync(String url) {
    long h = enter();
    try {
      Native.syncStart(h, url);
    } finally {
      exit();
    }
  }

  /** Stops background sync and waits for it. Not from inside an observer (BUSY). */
  public void stopSync() {
    refuseFromInside("stop sync");
    long h = enter();
    try {
      Native.syncStop(h);
    } finally {
      exit();
    }
  }

  /** {"state": "idle|connecting|syncing|live|backoff|paused|stopped", "reason", "pending", "cursor", "last_sync_ms", "last_error", "attempts"}. */
  public String syncStatus() {
    long h = enter();
    try {
      return Native.syncStatus(h);
    } finally {
      exit();
    }
  }

  // ---- mobile lifecycle ----------------------------------------------------------

  /** The app went to the background: background sync pauses, keeping its place. */
  public void appBackground() {
    long h = enter();
    try {
      Native.appBackground(h);
    } finally {
      exit();
    }
  }

  /** The app came to the foreground: background sync resumes at once. */
  public void appForeground() {
    long h = enter();
    try {
      Native.appForeground(h);
    } finally {
      exit();
    }
  }

  /** The OS reports the network up (reconnect now, skipping any backoff) or down. */
  public void networkChanged(boolean available) {
    long h = enter();
    try {
      Native.networkChanged(h, available);
    } finally {
      exit();
    }
  }

  // ---- conflicts and refusals ------------------------------------------------------

  /** JSON array of conflict records (docs/merge.md). */
  public String conflicts(boolean includeResolved) {
    long h = enter();
    try {
      return Native.conflicts(h, includeResolved);
    } finally {
      exit();
    }
  }

  /** Writes the lost value back; returns the id of the new row written for a deleted row, else null. */
  public String restoreConflict(long id) {
    long h = enter();
    try {
      return Native.conflictRestore(h, id);
    } finally {
      exit();
    }
  }

  public void dismissConflict(long id) {
    long h = enter();
    try {
      Native.conflictDismiss(h, id);
    } finally {
      exit();
    }
  }

  /** JSON array of changes the server refused, with code and message. */
  public String rejections() {
    long h = enter();
    try {
      return Native.rejections(h);
    } finally {
      exit();
    }
  }

  // ---- closing --------------------------------------------------------------------

  public boolean isClosed() {
    synchronized (lock) {
      return closing;
    }
  }

  /**
   * Refuses new calls, waits for calls under way on other threads, aborts
   * open transactions, stops background sync and closes the file. Closing
   * twice is harmless. Not from inside this replica's observer (BUSY).
   */
  @Override
  public void close() {
    long h;
    List<Transaction> txns;
    List<Subscription> subs;
    synchronized (lock) {
      if (handle == 0) return;
      refuseFromInside("close the replica");
      if (closing) {  // another thread is closing it: wait for that
        awaitUninterruptibly(true);
        return;
      }
      closing = true;
      awaitUninterruptibly(false);
      h = handle;
      txns = new ArrayList<Transaction>(openTxns.keySet());
      openTxns.clear();
      subs = new ArrayList<Subscription>(subscriptions);
      subscriptions.clear();
    }
    try {
      for (Transaction t : txns) t.abandon();
      Native.close(h);  // stops and joins the sync thread: no observer call can follow
    } finally {
      for (Subscription s : subs) Native.observerFree(s.slot);
      synchronized (lock) {
        handle = 0;
        lock.notifyAll();
      }
    }
  }

  // Waits (holding lock) for calls under way to end, or for another close() to finish.
  private void awaitUninterruptibly(boolean forClosed) {
    boolean interrupted = false;
    while (forClosed ? handle != 0 : inFlight > 0) {
      try {
        lock.wait();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) Thread.currentThread().interrupt();
  }

  private void refuseFromInside(String what) {
    if (depth.get()[0] > 0)
      throw new FieldSyncException(FieldSyncException.BUSY,
          "cannot " + what + " from inside one of its own observers or calls");
  }

  // ---- the guard every native call goes through ----------------------------------------

  /** Counts a call under way and returns the handle; CLOSED once close() has begun. */
  long enter() {
    long h;
    synchronized (lock) {
      if (closing) throw new FieldSyncException(FieldSyncException.CLOSED, "replica is closed");
      h = handle;
      inFlight++;
    }
    depth.get()[0]++;
    return h;
  }

  void exit() {
    depth.get()[0]--;
    synchronized (lock) {
      if (--inFlight == 0 && closing) lock.notifyAll();
    }
  }

  void forget(Transaction t) {
    synchronized (lock) {
      openTxns.remove(t);
    }
  }
}
