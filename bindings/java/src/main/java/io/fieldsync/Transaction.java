package io.fieldsync;

/**
 * Writes applied together, all or nothing ({@code fs_txn}). Nothing is
 * written until {@link #commit()}; {@link #close()} without a commit aborts,
 * so use it in try-with-resources. Methods return {@code this} for chaining.
 * A committed, closed or failed-to-commit transaction, or one whose replica
 * was closed, throws {@link FieldSyncException#CLOSED}.
 */
public final class Transaction implements AutoCloseable {
  private final Replica replica;
  private long handle;  // 0 once committed, aborted, or abandoned by Replica.close (guarded by this)

  Transaction(Replica replica, long handle) {
    this.replica = replica;
    this.handle = handle;
  }

  public synchronized Transaction put(String table, String id, String fieldsJson) {
    long t = enter();
    try {
      Native.txnPut(t, table, id, fieldsJson);
    } finally {
      replica.exit();
    }
    return this;
  }

  public synchronized Transaction delete(String table, String id) {
    long t = enter();
    try {
      Native.txnDelete(t, table, id);
    } finally {
      replica.exit();
    }
    return this;
  }

  public synchronized Transaction increment(String table, String id, String column, double delta) {
    long t = enter();
    try {
      Native.txnIncrement(t, table, id, column, delta);
    } finally {
      replica.exit();
    }
    return this;
  }

  public synchronized Transaction addMember(String table, String id, String column, String member) {
    long t = enter();
    try {
      Native.txnAddMember(t, table, id, column, member);
    } finally {
      replica.exit();
    }
    return this;
  }

  public synchronized Transaction removeMember(String table, String id, String column, String member) {
    long t = enter();
    try {
      Native.txnRemoveMember(t, table, id, column, member);
    } finally {
      replica.exit();
    }
    return this;
  }

  /** Applies every write in one SQLite transaction, or none of them (and throws). Either way the transaction is finished. */
  public synchronized void commit() {
    long t = enter();
    handle = 0;  // fs_txn_commit frees it whatever the outcome
    replica.forget(this);
    try {
      Native.txnCommit(t);
    } finally {
      replica.exit();
    }
  }

  /** Aborts (writes nothing) unless already committed or closed. */
  @Override
  public synchronized void close() {
    if (handle == 0) return;
    long t = handle;
    handle = 0;
    replica.forget(this);
    Native.txnAbort(t);  // touches only the transaction, never the replica
  }

  /** Replica.close: frees the handle, once no call on the replica is under way. */
  synchronized void abandon() {
    if (handle == 0) return;
    long t = handle;
    handle = 0;
    Native.txnAbort(t);
  }

  private long enter() {
    replica.enter();  // throws CLOSED once the replica is closing
    if (handle == 0) {
      replica.exit();
      throw new FieldSyncException(FieldSyncException.CLOSED, "the transaction was already committed or closed");
    }
    return handle;
  }
}
