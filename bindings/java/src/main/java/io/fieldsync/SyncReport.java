package io.fieldsync;

/** What one {@link Replica#syncOnce} exchange did (fs_sync_report). */
public final class SyncReport {
  /** Local changes the server accepted. */
  public final long pushed;
  /** Local changes the server refused (see {@link Replica#rejections()}). */
  public final long rejected;
  /** Local changes re-stamped to a later clock because of clock skew. */
  public final long restamped;
  /** Changes received from the server. */
  public final long pulled;
  public final long bytesSent;
  public final long bytesReceived;
  /** The server cursor this replica has now seen up to. */
  public final long cursor;

  SyncReport(long[] r) {
    pushed = r[0];
    rejected = r[1];
    restamped = r[2];
    pulled = r[3];
    bytesSent = r[4];
    bytesReceived = r[5];
    cursor = r[6];
  }

  @Override
  public String toString() {
    return "SyncReport{pushed=" + pushed + ", rejected=" + rejected + ", restamped=" + restamped + ", pulled="
        + pulled + ", bytesSent=" + bytesSent + ", bytesReceived=" + bytesReceived + ", cursor=" + cursor + "}";
  }
}
