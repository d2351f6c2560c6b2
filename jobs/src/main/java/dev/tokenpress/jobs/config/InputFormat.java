package dev.tokenpress.jobs.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

/** How the corpus is given. */
public enum InputFormat {
  /** A directory of image files (recursive, glob filter), one prompt for all. */
  DIRECTORY,
  /** A JSON-lines manifest of {@code id, path, prompt[, reference]}. */
  JSONL,
  /** A Parquet manifest of {@code id, path|bytes, prompt[, reference]}. */
  PARQUET;

  @JsonValue
  public String wire() {
    return Enums.wire(this);
  }

  @JsonCreator
  public static InputFormat of(String value) {
    return Enums.parse(InputFormat.class, value);
  }
}
