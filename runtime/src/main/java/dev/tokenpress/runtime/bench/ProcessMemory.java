package dev.tokenpress.runtime.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Resident set size of this process from {@code /proc/self/status} (Linux). */
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

  static long parseRssKib(String status) {
    for (String line : status.split("\n")) {
      if (line.startsWith("VmRSS:")) {
        String v = line.substring("VmRSS:".length()).trim();
        if (!v.endsWith("kB")) {
          throw new IllegalStateException("unexpected VmRSS line '" + line + "'");
        }
        return Long.parseLong(v.substring(0, v.length() - 2).trim());
      }
    }
    throw new IllegalStateException("no VmRSS line in " + STATUS);
  }
}
