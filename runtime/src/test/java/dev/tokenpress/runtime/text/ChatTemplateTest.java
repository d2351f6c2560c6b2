package dev.tokenpress.runtime.text;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Renders must equal Jinja2 3.1.2 in Hugging Face's chat-template environment. */
class ChatTemplateTest {
  private static final JsonNode EXPECTED = TextFixtures.expected();

  static Stream<Arguments> renders() {
    Stream.Builder<Arguments> b = Stream.builder();
    EXPECTED
        .get("renders")
        .forEach(
            r ->
                b.add(
                    Arguments.of(
                        r.get("template").asText(),
                        r.get("conversation").asText(),
                        r.get("add_generation_prompt").asBoolean(),
                        r)));
    return b.build();
  }

  @ParameterizedTest(name = "{0} / {1} / gen={2}")
  @MethodSource("renders")
  void matchesJinja(String template, String conversation, boolean gen, JsonNode r) {
    ChatTemplate t = ChatTemplate.parse(EXPECTED.get("templates").get(template).asText());
    List<ChatTemplate.Message> messages = new ArrayList<>();
    for (JsonNode m : EXPECTED.get("conversations").get(conversation)) {
      messages.add(
          new ChatTemplate.Message(m.get("role").asText(), TextFixtures.plain(m.get("content"))));
    }
    Map<String, Object> vars = Map.of("bos_token", "<s>", "eos_token", "</s>");
    if (r.has("error")) {
      assertThatThrownBy(() -> t.render(messages, gen, vars))
          .isInstanceOf(IllegalArgumentException.class);
    } else {
      assertThat(t.render(messages, gen, vars)).isEqualTo(r.get("output").asText());
    }
  }

  @Test
  void raiseExceptionCarriesTheMessage() {
    ChatTemplate t =
        ChatTemplate.parse(
            "{% if messages | length > 1 %}{{ raise_exception('one turn only') }}{% endif %}ok");
    assertThat(t.render(List.of(new ChatTemplate.Message("user", "x")), false, Map.of()))
        .isEqualTo("ok");
    assertThatThrownBy(
            () ->
                t.render(
                    List.of(
                        new ChatTemplate.Message("user", "x"),
                        new ChatTemplate.Message("user", "y")),
                    false,
                    Map.of()))
        .hasMessageContaining("one turn only");
  }

  @Test
  void unsupportedSyntaxFailsAtParseTime() {
    assertThatThrownBy(() -> ChatTemplate.parse("{% macro m() %}x{% endmacro %}"))
        .hasMessageContaining("macro");
    assertThatThrownBy(() -> ChatTemplate.parse("{% if x %}never closed"))
        .hasMessageContaining("ends inside");
    assertThatThrownBy(
            () -> ChatTemplate.parse("{{ x | nosuchfilter }}").render(List.of(), false, Map.of()))
        .hasMessageContaining("nosuchfilter");
  }

  @Test
  void expressions() {
    String src =
        "{{ 7 // 2 }} {{ -3 % 5 }} {{ 'a' ~ 1 }} {{ [1, 2, 3][1:] | join(',') }} {{ 'x' if none else 'y' }}"
            + " {{ 'abc'[-1] }} {{ 2 in [1, 2] }} {{ 3 not in [1, 2] }} {{ {'k': 'v'}.get('k') }} {{ range(3) | list | length }}";
    assertThat(ChatTemplate.parse(src).render(List.of(), false, Map.of()))
        .isEqualTo("3 2 a1 2,3 y c True True v 3");
  }
}
