package io.fieldsync;

/** An observer registration; closing it removes the observer. Closing twice, or after the replica, is harmless. */
public final class Subscription implements AutoCloseable {
  final Replica replica;
  final long slot;   // the JNI layer's observer record (freed when the replica closes)
  boolean removed;   // guarded by the replica's lock

  Subscription(Replica replica, long slot) {
    this.replica = replica;
    this.slot = slot;
  }

  @Override
  public void close() {
    replica.removeObserver(this);
  }
}
