package dev.tokenpress.operators.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON (RFC 8259) reader and a canonical writer, so that the operators module stays
 * JDK-only.
 *
 * <p><b>Reading</b> ({@link #parse}) maps objects to unmodifiable insertion-ordered {@code
 * Map<String, Object>}, arrays to unmodifiable {@code List<Object>}, strings to {@code String},
 * numbers to {@link BigDecimal} (exactly as written), {@code true}/{@code false} to {@code Boolean}
 * and {@code null} to Java {@code null}. It rejects everything RFC 8259 does not allow (comments,
 * trailing commas, single quotes, leading zeros, {@code NaN}, unescaped control characters, invalid
 * escapes, lone surrogates in <code>&#92;u</code> escapes), duplicate object keys, trailing content
 * and nesting deeper than {@value #MAX_DEPTH}. Errors are {@link IllegalArgumentException}s naming
 * the offset.
 *
 * <p><b>Writing</b> ({@link #write}) is canonical: no whitespace, object keys in map iteration
 * order, strings with only the mandatory escapes ({@code \"}, {@code \\}, {@code \b \f \n \r \t},
 * other control characters as lowercase <code>&#92;u00XX</code>) and everything else as raw UTF-16
 * text, integers in plain decimal, and {@code double}/{@code float} values as the shortest decimal
 * that parses back to the same {@code double}, in plain notation without trailing zeros ({@code
 * 0.5}, {@code 1}, {@code 0.0001}). The result does not depend on the JDK's {@code
 * Double.toString}.
 */
public final class Json {

  /** Deepest nesting of arrays and objects that {@link #parse} accepts. */
  public static final int MAX_DEPTH = 64;

  private final String s;
  private int pos;

  private Json(String s) {
    this.s = s;
  }

  /**
   * Parses one JSON value that must span the whole input (surrounding whitespace allowed).
   *
   * @throws IllegalArgumentException on any syntax error, with the offset
   */
  public static Object parse(String text) {
    if (text == null) {
      throw new IllegalArgumentException("JSON text must not be null");
    }
    Json p = new Json(text);
    p.skipWhitespace();
    Object v = p.readValue(0);
    p.skipWhitespace();
    if (p.pos != text.length()) {
      throw p.error("unexpected content after the JSON value");
    }
    return v;
  }

  private IllegalArgumentException error(String message) {
    return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + message);
  }

  private void skipWhitespace() {
    while (pos < s.length()) {
      char c = s.charAt(pos);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        pos++;
      } else {
        break;
      }
    }
  }

  private Object readValue(int depth) {
    if (pos >= s.length()) {
      throw error("unexpected end of input, expected a value");
    }
    char c = s.charAt(pos);
    switch (c) {
      case '{':
        return readObject(depth + 1);
      case '[':
        return readArray(depth + 1);
      case '"':
        return readString();
      case 't':
        expectWord("true");
        return Boolean.TRUE;
      case 'f':
        expectWord("false");
        return Boolean.FALSE;
      case 'n':
        expectWord("null");
        return null;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return readNumber();
        }
        throw error("unexpected character '" + printable(c) + "', expected a value");
    }
  }

  private static String printable(char c) {
    return c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c);
  }

  private void expectWord(String word) {
    if (!s.startsWith(word, pos)) {
      throw error("expected '" + word + "'");
    }
    pos += word.length();
  }

  private Map<String, Object> readObject(int depth) {
    checkDepth(depth);
    pos++; // '{'
    Map<String, Object> map = new LinkedHashMap<>();
    skipWhitespace();
    if (peek() == '}') {
      pos++;
      return Collections.unmodifiableMap(map);
    }
    while (true) {
      skipWhitespace();
      if (peek() != '"') {
        throw error("expected a string key");
      }
      int keyAt = pos;
      String key = readString();
      if (map.containsKey(key)) {
        pos = keyAt;
        throw error("duplicate key \"" + key + "\"");
      }
      skipWhitespace();
      if (peek() != ':') {
        throw error("expected ':' after key \"" + key + "\"");
      }
      pos++;
      skipWhitespace();
      map.put(key, readValue(depth));
      skipWhitespace();
      char c = peek();
      if (c == ',') {
        pos++;
      } else if (c == '}') {
        pos++;
        return Collections.unmodifiableMap(map);
      } else {
        throw error("expected ',' or '}' in object");
      }
    }
  }

  private List<Object> readArray(int depth) {
    checkDepth(depth);
    pos++; // '['
    List<Object> list = new ArrayList<>();
    skipWhitespace();
    if (peek() == ']') {
      pos++;
      return Collections.unmodifiableList(list);
    }
    while (true) {
      skipWhitespace();
      list.add(readValue(depth));
      skipWhitespace();
      char c = peek();
      if (c == ',') {
        pos++;
      } else if (c == ']') {
        pos++;
        return Collections.unmodifiableList(list);
      } else {
        throw error("expected ',' or ']' in array");
      }
    }
  }

  private void checkDepth(int depth) {
    if (depth > MAX_DEPTH) {
      throw error("nesting deeper than " + MAX_DEPTH);
    }
  }

  private char peek() {
    if (pos >= s.length()) {
      throw error("unexpected end of input");
    }
    return s.charAt(pos);
  }

  private String readString() {
    pos++; // opening quote
    StringBuilder sb = new StringBuilder();
    while (true) {
      if (pos >= s.length()) {
        throw error("unterminated string");
      }
      char c = s.charAt(pos);
      if (c == '"') {
        pos++;
        return sb.toString();
      }
      if (c < 0x20) {
        throw error("unescaped control character " + printable(c) + " in string");
      }
      if (c != '\\') {
        sb.append(c);
        pos++;
        continue;
      }
      pos++;
      if (pos >= s.length()) {
        throw error("unterminated escape");
      }
      char e = s.charAt(pos);
      switch (e) {
        case '"':
          sb.append('"');
          break;
        case '\\':
          sb.append('\\');
          break;
        case '/':
          sb.append('/');
          break;
        case 'b':
          sb.append('\b');
          break;
        case 'f':
          sb.append('\f');
          break;
        case 'n':
          sb.append('\n');
          break;
        case 'r':
          sb.append('\r');
          break;
        case 't':
          sb.append('\t');
          break;
        case 'u':
          pos++;
          char u = readHex4();
          if (Character.isHighSurrogate(u)) {
            if (!s.startsWith("\\u", pos + 1)) {
              throw error("high surrogate escape not followed by a low surrogate escape");
            }
            pos += 3;
            char low = readHex4();
            if (!Character.isLowSurrogate(low)) {
              throw error("high surrogate escape not followed by a low surrogate escape");
            }
            sb.append(u).append(low);
          } else if (Character.isLowSurrogate(u)) {
            throw error("lone low surrogate escape");
          } else {
            sb.append(u);
          }
          break;
        default:
          throw error("invalid escape '\\" + printable(e) + "'");
      }
      pos++;
    }
  }

  /** Reads 4 hex digits starting at pos; leaves pos on the last digit. */
  private char readHex4() {
    if (pos + 4 > s.length()) {
      throw error("truncated \\u escape");
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
      int d = Character.digit(s.charAt(pos + i), 16);
      if (d < 0) {
        throw error("invalid hex digit in \\u escape");
      }
      v = v * 16 + d;
    }
    pos += 3;
    return (char) v;
  }

  private BigDecimal readNumber() {
    int start = pos;
    if (s.charAt(pos) == '-') {
      pos++;
    }
    if (pos >= s.length() || !isDigit(s.charAt(pos))) {
      throw error("expected a digit");
    }
    if (s.charAt(pos) == '0') {
      pos++;
      if (pos < s.length() && isDigit(s.charAt(pos))) {
        throw error("leading zeros are not allowed");
      }
    } else {
      while (pos < s.length() && isDigit(s.charAt(pos))) {
        pos++;
      }
    }
    if (pos < s.length() && s.charAt(pos) == '.') {
      pos++;
      if (pos >= s.length() || !isDigit(s.charAt(pos))) {
        throw error("expected a digit after '.'");
      }
      while (pos < s.length() && isDigit(s.charAt(pos))) {
        pos++;
      }
    }
    if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
      pos++;
      if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
        pos++;
      }
      if (pos >= s.length() || !isDigit(s.charAt(pos))) {
        throw error("expected a digit in the exponent");
      }
      while (pos < s.length() && isDigit(s.charAt(pos))) {
        pos++;
      }
    }
    try {
      return new BigDecimal(s.substring(start, pos));
    } catch (NumberFormatException | ArithmeticException e) {
      pos = start;
      throw error("number out of range");
    }
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  // ------------------------------------------------------------------ writing

  /**
   * Writes {@code value} as canonical JSON (see the class comment). Accepts {@code Map} with {@code
   * String} keys, {@code List}, {@code String}, {@code Boolean}, {@code null}, {@code Integer},
   * {@code Long}, {@code Short}, {@code Byte}, {@code BigInteger}, {@code BigDecimal}, {@code
   * Double} and {@code Float}.
   *
   * @throws IllegalArgumentException for other types, non-String keys, NaN or infinities
   */
  public static String write(Object value) {
    StringBuilder sb = new StringBuilder();
    writeTo(sb, value);
    return sb.toString();
  }

  private static void writeTo(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof String str) {
      writeString(sb, str);
    } else if (v instanceof Boolean b) {
      sb.append(b.booleanValue());
    } else if (v instanceof Integer
        || v instanceof Long
        || v instanceof Short
        || v instanceof Byte
        || v instanceof BigInteger) {
      sb.append(v);
    } else if (v instanceof Double || v instanceof Float) {
      sb.append(formatDouble(((Number) v).doubleValue()));
    } else if (v instanceof BigDecimal d) {
      sb.append(plain(d));
    } else if (v instanceof Map<?, ?> m) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (!(e.getKey() instanceof String key)) {
          throw new IllegalArgumentException("JSON object keys must be strings, got " + e.getKey());
        }
        if (!first) {
          sb.append(',');
        }
        first = false;
        writeString(sb, key);
        sb.append(':');
        writeTo(sb, e.getValue());
      }
      sb.append('}');
    } else if (v instanceof List<?> l) {
      sb.append('[');
      for (int i = 0; i < l.size(); i++) {
        if (i > 0) {
          sb.append(',');
        }
        writeTo(sb, l.get(i));
      }
      sb.append(']');
    } else if (v instanceof int[] a) {
      sb.append('[');
      for (int i = 0; i < a.length; i++) {
        if (i > 0) {
          sb.append(',');
        }
        sb.append(a[i]);
      }
      sb.append(']');
    } else {
      throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
    }
  }

  private static void writeString(StringBuilder sb, String str) {
    sb.append('"');
    for (int i = 0; i < str.length(); i++) {
      char c = str.charAt(i);
      switch (c) {
        case '"':
          sb.append("\\\"");
          break;
        case '\\':
          sb.append("\\\\");
          break;
        case '\b':
          sb.append("\\b");
          break;
        case '\f':
          sb.append("\\f");
          break;
        case '\n':
          sb.append("\\n");
          break;
        case '\r':
          sb.append("\\r");
          break;
        case '\t':
          sb.append("\\t");
          break;
        default:
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
      }
    }
    sb.append('"');
  }

  /**
   * The shortest plain decimal that parses back to exactly {@code d} (e.g. {@code 0.1} for {@code
   * 0.1}, {@code 1} for {@code 1.0}, {@code -0} is written as {@code 0}).
   *
   * @throws IllegalArgumentException for NaN and infinities, which JSON cannot represent
   */
  public static String formatDouble(double d) {
    if (Double.isNaN(d) || Double.isInfinite(d)) {
      throw new IllegalArgumentException("JSON cannot represent " + d);
    }
    if (d == 0.0) {
      return "0";
    }
    BigDecimal exact = new BigDecimal(d);
    for (int precision = 1; precision <= 17; precision++) {
      BigDecimal r = exact.round(new MathContext(precision));
      if (r.doubleValue() == d) {
        return plain(r);
      }
    }
    return plain(exact); // unreachable: 17 significant digits always round-trip
  }

  private static String plain(BigDecimal d) {
    if (d.signum() == 0) {
      return "0";
    }
    return d.stripTrailingZeros().toPlainString();
  }
}
