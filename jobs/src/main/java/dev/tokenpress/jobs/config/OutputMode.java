package dev.tokenpress.jobs.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

/** What to do when the output directory already holds results. */
public enum OutputMode {
  /** Process only ids not yet committed in {@code outputs/} (same plan and model required). */
  RESUME,
  /** Delete the output directory first. */
  OVERWRITE,
  /** Fail if the output directory exists and is not empty. */
  ERROR_IF_EXISTS;

  @JsonValue
  public String wire() {
    return Enums.wire(this);
  }

  @JsonCreator
  public static OutputMode of(String value) {
    return Enums.parse(OutputMode.class, value);
  }
}
