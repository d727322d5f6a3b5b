package io.fieldsync;

/**
 * The JNI entry points (bindings/java/jni/fieldsync_jni.c), one per C API
 * call. Handles are the C pointers as longs; every failure is thrown as a
 * FieldSyncException. Only Replica, Transaction and Subscription call these,
 * and they guarantee a handle is never used after it is freed.
 */
final class Native {
  static {
    System.loadLibrary("fieldsync_jni");  // which loads libfieldsync.so, its dependency
  }

  private Native() {}

  static native String version();
  static native int protocolVersion();
  static native String newId();

  static native long open(String path, String schemaJson);
  /** fs_replica_close then fs_replica_free: the handle is gone afterwards, whatever is thrown. */
  static native void close(long replica);
  static native String node(long replica);

  static native void put(long replica, String table, String id, String fieldsJson);
  static native String get(long replica, String table, String id);
  static native void delete(long replica, String table, String id);
  static native void increment(long replica, String table, String id, String column, double delta);
  static native String[] query(long replica, String table, String queryJson);

  static native long txnBegin(long replica);
  static native void txnPut(long txn, String table, String id, String fieldsJson);
  static native void txnDelete(long txn, String table, String id);
  static native void txnIncrement(long txn, String table, String id, String column, double delta);
  static native void txnAddMember(long txn, String table, String id, String column, String member);
  static native void txnRemoveMember(long txn, String table, String id, String column, String member);
  /** Frees the transaction whatever the outcome. */
  static native void txnCommit(long txn);
  static native void txnAbort(long txn);

  /** Returns the observer record (a global ref to {@code observer} and the C token). */
  static native long observerAdd(long replica, Observer observer);
  /** fs_observer_remove, then drops the global ref (once no call to it is running). */
  static native void observerRemove(long replica, long slot);
  /** Frees the record; only once the replica is closed (no callback can still be under way). */
  static native void observerFree(long slot);

  /** {pushed, rejected, restamped, pulled, bytesSent, bytesReceived, cursor}. */
  static native long[] syncOnce(long replica, String url);
  static native void syncStart(long replica, String url);
  static native void syncStop(long replica);
  static native String syncStatus(long replica);

  static native void appBackground(long replica);
  static native void appForeground(long replica);
  static native void networkChanged(long replica, boolean available);

  static native String conflicts(long replica, boolean includeResolved);
  /** The id of the new row a restore wrote, or null. */
  static native String conflictRestore(long replica, long id);
  static native void conflictDismiss(long replica, long id);
  static native String rejections(long replica);
}
