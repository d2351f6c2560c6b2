package dev.tokenpress.operators.testing;

import dev.tokenpress.operators.json.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Reads the golden JSON files under {@code src/test/resources/golden}, written by the numpy scripts
 * in {@code src/test/python}.
 */
public final class Golden {

  private Golden() {}

  /** The parsed JSON object of {@code golden/<path>}. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> load(String path) {
    String resource = "/golden/" + path;
    try (InputStream in = Golden.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException(
            "missing test resource "
                + resource
                + "; regenerate it with the script in src/test/python");
      }
      return (Map<String, Object>)
          Json.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A JSON array of numbers as floats; {@code null} entries become {@code -Infinity}. */
  public static float[] floats(Object array) {
    List<?> l = (List<?>) array;
    float[] out = new float[l.size()];
    for (int i = 0; i < out.length; i++) {
      Object v = l.get(i);
      out[i] = v == null ? Float.NEGATIVE_INFINITY : ((BigDecimal) v).floatValue();
    }
    return out;
  }

  /** A JSON array of numbers as doubles. */
  public static double[] doubles(Object array) {
    List<?> l = (List<?>) array;
    double[] out = new double[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ((BigDecimal) l.get(i)).doubleValue();
    }
    return out;
  }

  /** A JSON array of integers. */
  public static int[] ints(Object array) {
    List<?> l = (List<?>) array;
    int[] out = new int[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ((BigDecimal) l.get(i)).intValueExact();
    }
    return out;
  }

  /** A JSON integer. */
  public static int integer(Object number) {
    return ((BigDecimal) number).intValueExact();
  }

  /** A JSON number as double. */
  public static double number(Object number) {
    return ((BigDecimal) number).doubleValue();
  }

  /** A JSON array of objects. */
  @SuppressWarnings("unchecked")
  public static List<Map<String, Object>> objects(Object array) {
    return (List<Map<String, Object>>) array;
  }

  /** A JSON array of any elements (e.g. an array of arrays, each read with {@link #ints}). */
  @SuppressWarnings("unchecked")
  public static List<Object> list(Object array) {
    return (List<Object>) array;
  }

  /** Slice {@code [from, from + len)} of {@code a}. */
  public static float[] slice(float[] a, int from, int len) {
    return java.util.Arrays.copyOfRange(a, from, from + len);
  }
}
