package dev.tokenpress.runtime.text;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TokenizerTest {
  private static final JsonNode EXPECTED = TextFixtures.expected();
  private static PromptEncoder prompts;

  @BeforeAll
  static void load() {
    prompts = PromptEncoder.load(TextFixtures.tokenizerDir());
  }

  @AfterAll
  static void close() {
    prompts.close();
  }

  @Test
  void encodesLikeHuggingFace() {
    Tokenizer tok = prompts.tokenizer();
    for (JsonNode c : EXPECTED.get("encode")) {
      String text = c.get("text").asText();
      assertThat(tok.encode(text)).as(text).containsExactly(ints(c.get("ids")));
      assertThat(tok.encode(text, false)).as(text).containsExactly(ints(c.get("ids_no_special")));
    }
  }

  @Test
  void decodesLikeHuggingFace() {
    Tokenizer tok = prompts.tokenizer();
    for (JsonNode c : EXPECTED.get("decode")) {
      assertThat(tok.decode(ints(c.get("ids")))).isEqualTo(c.get("text").asText());
    }
    assertThat(tok.decode(new int[] {1, 4, 2})).isEmpty();
  }

  @Test
  void vocabulary() {
    Tokenizer tok = prompts.tokenizer();
    assertThat(tok.tokenId("<image>")).isEqualTo(4);
    assertThat(tok.tokenId("USER")).isEqualTo(5);
    assertThat(tok.tokenId("nope")).isEqualTo(-1);
    assertThat(tok.isSpecial(2)).isTrue();
    assertThat(tok.isSpecial(7)).isFalse();
    assertThat(tok.vocabSize()).isEqualTo(7 + 32);
  }

  @Test
  void promptThroughTheChatTemplate() {
    EncodedPrompt p = prompts.encode("Is there a red circle?", 16);
    assertThat(p.text()).isEqualTo("USER: <image>\nIs there a red circle? ASSISTANT:");
    assertThat(p.ids()).containsExactly(ints(EXPECTED.get("encode").get(0).get("ids")));
    assertThat(p.imageIndex()).isEqualTo(3);
    assertThat(p.prefix()).containsExactly(1, 5, prompts.tokenizer().tokenId(":"));
    assertThat(p.expandedLength()).isEqualTo(p.ids().length - 1 + 16);
    assertThat(prompts.eosTokenId()).isEqualTo(2);
    assertThat(prompts.context()).isEqualTo(64);
  }

  @Test
  void promptTooLongIsTyped() {
    String q = "is there a red circle? ".repeat(10);
    assertThatThrownBy(() -> prompts.encode(q, 16))
        .isInstanceOfSatisfying(
            PromptTooLongException.class,
            e -> {
              assertThat(e.context()).isEqualTo(64);
              assertThat(e.tokens()).isGreaterThanOrEqualTo(64);
              assertThat(e.getMessage()).contains("16 visual tokens").contains("context is 64");
            });
    assertThat(prompts.encode("is there a red circle?", 40).expandedLength()).isLessThan(64);
  }

  @Test
  void imagePlaceholderRules() {
    assertThatThrownBy(() -> prompts.encode("look: <image>", 4))
        .hasMessageContaining("image placeholder");
    assertThatThrownBy(() -> prompts.encodeRendered("USER: no image ASSISTANT:", 4))
        .hasMessageContaining("no image placeholder");
    assertThatThrownBy(() -> prompts.encodeRendered("<image><image>", 4))
        .hasMessageContaining("more than one");
  }

  @Test
  void bosIsNeverDoubled() {
    assertThat(prompts.encodeRendered("<s>USER: <image>", 1).ids())
        .containsExactly(1, 5, prompts.tokenizer().tokenId(":"), 4);
  }

  static int[] ints(JsonNode arr) {
    int[] a = new int[arr.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = arr.get(i).asInt();
    }
    return a;
  }
}
