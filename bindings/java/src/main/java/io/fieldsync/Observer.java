package io.fieldsync;

/**
 * Told about committed changes. {@code eventsJson} is a JSON array of
 * {@code {"table": t, "id": id, "deleted": bool, "remote": bool}}.
 *
 * <p>Runs on the thread that made the change: the caller's thread for local
 * writes, the background sync thread (attached to the JVM for the call) for
 * changes received by {@link Replica#startSync}. It may call back into the
 * replica, but must not close it or stop its sync (those throw
 * {@link FieldSyncException#BUSY} from inside an observer). An exception it
 * throws is cleared and otherwise ignored: it never breaks the write or sync
 * that produced the change. Keep it short; post work elsewhere (on Android,
 * to a Handler) rather than blocking the sync thread.
 */
@FunctionalInterface
public interface Observer {
  void onChange(String eventsJson);
}
