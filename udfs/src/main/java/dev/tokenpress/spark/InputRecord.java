package dev.tokenpress.spark;

import java.util.Objects;

/**
 * One corpus row as the runtime sees it: a deterministic id, the source (path or URI, kept for
 * provenance), the encoded media bytes, the prompt, and an optional reference answer.
 */
public final class InputRecord {
  private final String id;
  private final String source;
  private final byte[] bytes;
  private final String prompt;
  private final String reference;

  /** Takes ownership of {@code bytes}. */
  public InputRecord(String id, String source, byte[] bytes, String prompt, String reference) {
    this.id = Objects.requireNonNull(id, "id");
    this.source = source;
    this.bytes = Objects.requireNonNull(bytes, "bytes");
    this.prompt = Objects.requireNonNull(prompt, "prompt");
    this.reference = reference;
  }

  public String id() {
    return id;
  }

  public String source() {
    return source;
  }

  /** Not copied: do not modify. */
  public byte[] bytes() {
    return bytes;
  }

  public String prompt() {
    return prompt;
  }

  /** Null when the corpus has no reference answer. */
  public String reference() {
    return reference;
  }

  @Override
  public String toString() {
    return "InputRecord(" + id + ", " + source + ", " + bytes.length + " bytes)";
  }
}
