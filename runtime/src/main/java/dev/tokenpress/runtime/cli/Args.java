package dev.tokenpress.runtime.cli;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * {@code --name value} options and {@code --flag} switches of one command, checked against the
 * command's declared options: unknown or repeated options, missing values and malformed numbers are
 * {@link UsageException}s that name the option and the value found. The one argument parser of the
 * {@code tokenpress} tools.
 */
public final class Args {
  private final Map<String, String> values = new HashMap<>();
  private final Set<String> flags = new HashSet<>();

  public Args(String[] args, Set<String> valueOptions, Set<String> flagOptions) {
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (flagOptions.contains(a)) {
        flags.add(a);
      } else if (valueOptions.contains(a)) {
        if (i + 1 >= args.length) {
          throw new UsageException("missing value after " + a);
        }
        if (values.put(a, args[++i]) != null) {
          throw new UsageException(a + " given twice");
        }
      } else {
        throw new UsageException("unknown option " + a);
      }
    }
  }

  /** Options that all take a value (no switches). */
  public Args(String[] args, Set<String> valueOptions) {
    this(args, valueOptions, Set.of());
  }

  public boolean has(String name) {
    return values.containsKey(name);
  }

  public boolean flag(String name) {
    return flags.contains(name);
  }

  public String string(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  public String required(String name) {
    String v = values.get(name);
    if (v == null) {
      throw new UsageException(name + " is required");
    }
    return v;
  }

  public Path path(String name) {
    return Path.of(required(name));
  }

  /** An integer {@code >= min}, or {@code fallback} when absent. */
  public int integer(String name, int fallback, int min) {
    return integer(name, fallback, min, Integer.MAX_VALUE);
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
      throw new UsageException(
          name
              + (max == Integer.MAX_VALUE
                  ? " must be >= " + min
                  : " must be in [" + min + ", " + max + "]")
              + ", found "
              + x);
    }
    return x;
  }

  /** Comma-separated integers, or null when absent. */
  public int[] ints(String name) {
    String v = values.get(name);
    if (v == null) {
      return null;
    }
    try {
      return Arrays.stream(v.split(","))
          .map(String::trim)
          .filter(s -> !s.isEmpty())
          .mapToInt(Integer::parseInt)
          .toArray();
    } catch (NumberFormatException e) {
      throw new UsageException(name + " must be comma-separated integers, found '" + v + "'");
    }
  }
}
