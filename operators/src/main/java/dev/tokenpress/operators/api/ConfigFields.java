package dev.tokenpress.operators.api;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Typed, strict access to one operator object of a plan. Every error names the field as {@code
 * op.key}, the bad value and what is allowed.
 */
final class ConfigFields {

  private final String op;
  private final Map<String, Object> map;

  private ConfigFields(String op, Map<String, Object> map) {
    this.op = op;
    this.map = map;
  }

  /**
   * Wraps {@code map} after checking that it has no keys beyond {@code "op"} and {@code
   * allowedKeys}.
   */
  static ConfigFields of(String op, Map<String, Object> map, List<String> allowedKeys) {
    List<String> allowed = new ArrayList<>();
    allowed.add("op");
    allowed.addAll(allowedKeys);
    for (String key : map.keySet()) {
      if (!allowed.contains(key)) {
        throw new IllegalArgumentException(
            op + ": unknown key \"" + key + "\"; allowed keys: " + allowed);
      }
    }
    return new ConfigFields(op, map);
  }

  String field(String key) {
    return op + "." + key;
  }

  boolean has(String key) {
    return map.containsKey(key);
  }

  private String describe(Object v) {
    if (v == null) {
      return "null";
    }
    if (v instanceof String s) {
      return "\"" + s + "\"";
    }
    if (v instanceof BigDecimal d) {
      return d.toString();
    }
    if (v instanceof Map) {
      return "an object";
    }
    if (v instanceof List) {
      return "an array";
    }
    return String.valueOf(v);
  }

  int getInt(String key, int defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    Object v = map.get(key);
    try {
      if (v instanceof BigDecimal d) {
        return d.intValueExact();
      }
    } catch (ArithmeticException e) {
      // fall through to the error
    }
    throw new IllegalArgumentException(field(key) + " must be an integer, got " + describe(v));
  }

  long getLong(String key, long defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    Object v = map.get(key);
    try {
      if (v instanceof BigDecimal d) {
        return d.longValueExact();
      }
    } catch (ArithmeticException e) {
      // fall through to the error
    }
    throw new IllegalArgumentException(
        field(key) + " must be an integer in the 64-bit range, got " + describe(v));
  }

  double getDouble(String key) {
    Object v = map.get(key);
    if (v instanceof BigDecimal d) {
      double x = d.doubleValue();
      if (!Double.isInfinite(x)) {
        return x;
      }
    }
    throw new IllegalArgumentException(field(key) + " must be a number, got " + describe(v));
  }

  String getString(String key, String defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    Object v = map.get(key);
    if (v instanceof String s) {
      return s;
    }
    throw new IllegalArgumentException(field(key) + " must be a string, got " + describe(v));
  }

  boolean getBoolean(String key, boolean defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    Object v = map.get(key);
    if (v instanceof Boolean b) {
      return b;
    }
    throw new IllegalArgumentException(field(key) + " must be true or false, got " + describe(v));
  }

  /** An integer or a non-empty array of integers at {@code key} (required), as a list. */
  List<Integer> getIntOrIntList(String key) {
    if (!has(key)) {
      throw new IllegalArgumentException(
          field(key) + " is required (an integer or an array of integers)");
    }
    Object v = map.get(key);
    if (v instanceof List<?> list) {
      if (list.isEmpty()) {
        throw new IllegalArgumentException(field(key) + " must not be an empty array");
      }
      List<Integer> out = new ArrayList<>();
      for (int i = 0; i < list.size(); i++) {
        Object e = list.get(i);
        try {
          if (e instanceof BigDecimal d) {
            out.add(d.intValueExact());
            continue;
          }
        } catch (ArithmeticException ex) {
          // fall through to the error
        }
        throw new IllegalArgumentException(
            field(key) + "[" + i + "] must be an integer, got " + describe(e));
      }
      return List.copyOf(out);
    }
    return List.of(getInt(key, 0));
  }

  /** The enum constant whose lower-case name is the string at {@code key}. */
  <E extends Enum<E>> E getEnum(String key, Class<E> type, E defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    String s = getString(key, null);
    List<String> names = new ArrayList<>();
    for (E e : type.getEnumConstants()) {
      String name = e.name().toLowerCase(Locale.ROOT);
      names.add(name);
      if (name.equals(s)) {
        return e;
      }
    }
    throw new IllegalArgumentException(
        field(key) + " must be one of " + names + ", got \"" + s + "\"");
  }

  /**
   * The budget given by exactly one of {@link Budget#KEYS}, or {@code defaultValue} if none is
   * given ({@code null} means one is required).
   */
  Budget budget(Budget defaultValue) {
    String found = null;
    for (String key : Budget.KEYS) {
      if (has(key)) {
        if (found != null) {
          throw new IllegalArgumentException(
              op
                  + ": give only one of "
                  + Budget.KEYS
                  + ", got both \""
                  + found
                  + "\" and \""
                  + key
                  + "\"");
        }
        found = key;
      }
    }
    if (found == null) {
      if (defaultValue == null) {
        throw new IllegalArgumentException(op + ": one of " + Budget.KEYS + " is required");
      }
      return defaultValue;
    }
    try {
      switch (found) {
        case "keep":
          return Budget.keep(getInt("keep", 0));
        case "keep_ratio":
          return Budget.keepRatio(getDouble("keep_ratio"));
        default:
          return Budget.dropRatio(getDouble("drop_ratio"));
      }
    } catch (IllegalArgumentException e) {
      String m = e.getMessage();
      throw new IllegalArgumentException(m.startsWith(op + ".") ? m : op + "." + m, e);
    }
  }

  LayerRange layerRange(String key, LayerRange defaultValue) {
    if (!has(key)) {
      return defaultValue;
    }
    try {
      return LayerRange.parse(getString(key, null));
    } catch (IllegalArgumentException e) {
      String m = e.getMessage();
      throw new IllegalArgumentException(m.startsWith(op + ".") ? m : field(key) + ": " + m, e);
    }
  }
}
