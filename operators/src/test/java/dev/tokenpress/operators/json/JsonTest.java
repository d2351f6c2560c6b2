package dev.tokenpress.operators.json;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTest {

  @Test
  void parsesAllValueKinds() {
    Object v =
        Json.parse(
            " {\"a\": [1, -2.5e3, 0, true, false, null, \"x\\n\\u00e9\\ud83d\\ude00\\/\"], \"b\": {}}\n");
    assertThat(v).isInstanceOf(Map.class);
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) v;
    assertThat(m.keySet()).containsExactly("a", "b");
    @SuppressWarnings("unchecked")
    List<Object> a = (List<Object>) m.get("a");
    assertThat(a.get(0)).isEqualTo(new BigDecimal("1"));
    assertThat(a.get(1)).isEqualTo(new BigDecimal("-2.5e3"));
    assertThat(a.subList(3, 6)).containsExactly(Boolean.TRUE, Boolean.FALSE, null);
    assertThat(a.get(6)).isEqualTo("x\n\u00e9\ud83d\ude00/");
    assertThat((Map<?, ?>) m.get("b")).isEmpty();
    assertThat(Json.parse("[]")).isEqualTo(List.of());
    assertThat(Json.parse("\"\"")).isEqualTo("");
  }

  @Test
  void resultIsUnmodifiable() {
    Map<?, ?> m = (Map<?, ?>) Json.parse("{\"a\":[1]}");
    assertThatThrownBy(() -> ((List<?>) m.get("a")).clear())
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(m::clear).isInstanceOf(UnsupportedOperationException.class);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        " ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "{'a':1}",
        "{a:1}",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "[1]x",
        "// c\n1",
        "/* c */1",
        "\"a\tb\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"abc",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "[1],",
        "\u00a01"
      })
  void rejectsInvalidJson(String text) {
    assertThatThrownBy(() -> Json.parse(text))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("invalid JSON at offset");
  }

  @Test
  void rejectsDuplicateKeysAndDeepNesting() {
    assertThatThrownBy(() -> Json.parse("{\"a\":1,\"a\":2}"))
        .hasMessageContaining("duplicate key \"a\"");
    String deep = "[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1);
    assertThatThrownBy(() -> Json.parse(deep)).hasMessageContaining("nesting deeper than 64");
    String ok = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);
    assertThat(Json.parse(ok)).isInstanceOf(List.class);
  }

  @Test
  void errorNamesOffset() {
    assertThatThrownBy(() -> Json.parse("[1, 2,, 3]"))
        .hasMessage("invalid JSON at offset 6: unexpected character ',', expected a value");
  }

  @Test
  void writesCanonically() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("op", "fastv");
    m.put("layer", 2);
    m.put("r", 0.5);
    m.put("one", 1.0);
    m.put("s", "q\"\\\n\u0001é");
    m.put("l", List.of(1L, true));
    m.put("n", null);
    m.put("a", new int[] {3, 4});
    assertThat(Json.write(m))
        .isEqualTo(
            "{\"op\":\"fastv\",\"layer\":2,\"r\":0.5,\"one\":1,\"s\":\"q\\\"\\\\\\n\\u0001é\",\"l\":[1,true],"
                + "\"n\":null,\"a\":[3,4]}");
    assertThatThrownBy(() -> Json.write(Double.NaN)).hasMessageContaining("cannot represent NaN");
    assertThatThrownBy(() -> Json.write(new Object()))
        .hasMessageContaining("cannot write java.lang.Object");
  }

  @Test
  void formatsDoublesAsShortestRoundTrip() {
    assertThat(Json.formatDouble(0.1)).isEqualTo("0.1");
    assertThat(Json.formatDouble(0.3)).isEqualTo("0.3");
    assertThat(Json.formatDouble(1.0 - 0.7)).isEqualTo("0.30000000000000004");
    assertThat(Json.formatDouble(1e-4)).isEqualTo("0.0001");
    assertThat(Json.formatDouble(2e23)).isEqualTo("200000000000000000000000");
    assertThat(Json.formatDouble(-0.0)).isEqualTo("0");
    assertThat(Json.formatDouble(-1.5)).isEqualTo("-1.5");
    for (double d : new double[] {Math.PI, 1.0 / 3, 5e-324, Double.MAX_VALUE, 123456.789, 0.25}) {
      String s = Json.formatDouble(d);
      assertThat(Double.parseDouble(s)).as(s).isEqualTo(d);
      assertThat(((BigDecimal) Json.parse(s)).doubleValue()).isEqualTo(d);
    }
  }

  @Test
  void roundTrips() {
    String text = "[{\"op\":\"x\",\"v\":[1,2.5,\"é\\u0000\"],\"o\":{\"k\":null}},true]";
    assertThat(Json.write(Json.parse(text))).isEqualTo(text);
    assertThat(Arrays.asList(Json.write(Json.parse(" [ 1 , 2 ] ")))).containsExactly("[1,2]");
  }
}
