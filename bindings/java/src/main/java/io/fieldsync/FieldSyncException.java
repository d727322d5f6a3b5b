package io.fieldsync;

/**
 * Every error of the FieldSync C API (an {@code fs_error}), with its code.
 * The constants mirror {@code FS_ERR_*} in fieldsync.h (the wire protocol's
 * numbers, docs/protocol.md).
 */
public class FieldSyncException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public static final int INVALID_ARGUMENT = 1;
  public static final int NOT_FOUND = 2;
  public static final int SCHEMA_VIOLATION = 3;
  public static final int CORRUPTION = 4;
  public static final int IO = 5;
  public static final int PROTOCOL = 6;
  public static final int LIMIT_EXCEEDED = 7;
  public static final int CLOCK_SKEW = 8;
  public static final int UNSUPPORTED = 9;
  public static final int BUSY = 10;
  public static final int CLOSED = 11;
  public static final int PERMISSION_DENIED = 12;
  public static final int DELETED = 13;
  public static final int UNAUTHENTICATED = 14;
  public static final int FROZEN = 15;

  private final int code;

  /** Called by the JNI layer with the code and message of an fs_error. */
  public FieldSyncException(int code, String message) {
    super(codeName(code) + ": " + message);
    this.code = code;
  }

  /** One of the constants above. */
  public int code() {
    return code;
  }

  /** The constant's name for a code, e.g. "SCHEMA_VIOLATION"; "ERROR_n" for an unknown one. */
  public static String codeName(int code) {
    switch (code) {
      case INVALID_ARGUMENT: return "INVALID_ARGUMENT";
      case NOT_FOUND: return "NOT_FOUND";
      case SCHEMA_VIOLATION: return "SCHEMA_VIOLATION";
      case CORRUPTION: return "CORRUPTION";
      case IO: return "IO";
      case PROTOCOL: return "PROTOCOL";
      case LIMIT_EXCEEDED: return "LIMIT_EXCEEDED";
      case CLOCK_SKEW: return "CLOCK_SKEW";
      case UNSUPPORTED: return "UNSUPPORTED";
      case BUSY: return "BUSY";
      case CLOSED: return "CLOSED";
      case PERMISSION_DENIED: return "PERMISSION_DENIED";
      case DELETED: return "DELETED";
      case UNAUTHENTICATED: return "UNAUTHENTICATED";
      case FROZEN: return "FROZEN";
      default: return "ERROR_" + code;
    }
  }
}
