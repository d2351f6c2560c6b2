package dev.tokenpress.evaluate.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Resident set size (current and peak) of this process from {@code /proc/self/status} (Linux). */
public final class ProcessMemory {
  private static final Path STATUS = Path.of("/proc/self/status");

  private ProcessMemory() {}

  public static boolean available() {
    return Files.isReadable(STATUS);
  }

  /** {@code VmRSS} in KiB. */
  public static long rssKib() {
    try {
      return parseRssKib(Files.readString(STATUS));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + STATUS, e);
    }
  }

  /** {@code VmHWM} (peak resident set size) in KiB. */
  public static long peakRssKib() {
    try {
      return parseKib(Files.readString(STATUS), "VmHWM:");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + STATUS, e);
    }
  }

  static long parseRssKib(String status) {
    return parseKib(status, "VmRSS:");
  }

  private static long parseKib(String status, String field) {
    for (String line : status.split("\n")) {
      if (line.startsWith(field)) {
        String v = line.substring(field.length()).trim();
        if (!v.endsWith("kB")) {
          throw new IllegalStateException("unexpected " + field + " line '" + line + "'");
        }
        return Long.parseLong(v.substring(0, v.length() - 2).trim());
      }
    }
    throw new IllegalStateException("no " + field + " line in " + STATUS);
  }
}
