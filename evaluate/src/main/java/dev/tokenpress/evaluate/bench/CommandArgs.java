package dev.tokenpress.evaluate.bench;

import dev.tokenpress.runtime.cli.UsageException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code --name value} options of the bench and eval commands, checked against the command's
 * declared options: unknown or repeated options, missing values and malformed numbers are
 * {@link UsageException}s that name the option and the value found.
 */
public final class CommandArgs {
  private final Map<String, String> values = new HashMap<>();

  public CommandArgs(String[] args, Set<String> valueOptions) {
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!valueOptions.contains(a)) {
        throw new UsageException("unknown option " + a);
      }
      if (i + 1 >= args.length) {
        throw new UsageException("missing value after " + a);
      }
      if (values.put(a, args[++i]) != null) {
        throw new UsageException(a + " given twice");
      }
    }
  }

  public boolean has(String name) {
    return values.containsKey(name);
  }

  public String string(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  public Path path(String name) {
    String v = values.get(name);
    if (v == null) {
      throw new UsageException(name + " is required");
    }
    return Path.of(v);
  }

  /** An integer in {@code [min, max]}, or {@code fallback} when absent. */
  public int integer(String name, int fallback, int min, int max) {
    String v = values.get(name);
    if (v == null) {
      return fallback;
    }
    int x;
    try {
      x = Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new UsageException(name + " must be an integer, found '" + v + "'");
    }
    if (x < min || x > max) {
      throw new UsageException(name + " must be in [" + min + ", " + max + "], found " + x);
    }
    return x;
  }
}
