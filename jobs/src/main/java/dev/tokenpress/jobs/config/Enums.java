package dev.tokenpress.jobs.config;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Lower-case, hyphenated names for config enumerations, with errors that list the allowed values.
 */
final class Enums {
  private Enums() {}

  static String wire(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  static <E extends Enum<E>> E parse(Class<E> type, String value) {
    for (E e : type.getEnumConstants()) {
      if (wire(e).equals(value)) {
        return e;
      }
    }
    throw new IllegalArgumentException(
        "'" + value + "' is not allowed; allowed values: " + allowed(type));
  }

  static <E extends Enum<E>> String allowed(Class<E> type) {
    return Arrays.stream(type.getEnumConstants())
        .map(Enums::wire)
        .collect(Collectors.joining(", "));
  }
}
