package dev.tokenpress.evaluate.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Goldens from the training script's own functions: src/test/python/gen_golden_scoring.py. */
class AnswerScoringTest {
  private static JsonNode golden() throws IOException {
    try (InputStream in =
        AnswerScoringTest.class.getResourceAsStream("/golden/eval/scoring.json")) {
      return new ObjectMapper().readTree(in);
    }
  }

  private static List<AnswerScoring.CaptionObject> objects(JsonNode array) {
    List<AnswerScoring.CaptionObject> out = new ArrayList<>();
    for (JsonNode o : array) {
      out.add(
          new AnswerScoring.CaptionObject(
              o.get(0).asText(), o.get(1).asText(), o.get(2).asText(), o.get(3).asText()));
    }
    return out;
  }

  @Test
  void normalisationMatchesTheTrainer() throws IOException {
    for (JsonNode c : golden().get("normalize")) {
      assertThat(AnswerScoring.normalize(c.get("text").asText()))
          .as(c.get("text").asText())
          .isEqualTo(c.get("normalized").asText());
    }
    assertThat(AnswerScoring.exactMatch("Yes", "yes")).isTrue();
    assertThat(AnswerScoring.exactMatch("top  left", "top left")).isTrue();
    assertThat(AnswerScoring.exactMatch("yes.", "yes")).isFalse();
  }

  @Test
  void captionParsingMatchesTheTrainer() throws IOException {
    for (JsonNode c : golden().get("parse_caption")) {
      assertThat(AnswerScoring.parseCaption(c.get("text").asText()))
          .as(c.get("text").asText())
          .isEqualTo(objects(c.get("objects")));
    }
  }

  @Test
  void captionTallyMatchesTheTrainersF1AndChair() throws IOException {
    JsonNode g = golden();
    AnswerScoring.CaptionTally t = new AnswerScoring.CaptionTally();
    for (JsonNode c : g.get("captions")) {
      t.add(AnswerScoring.parseCaption(c.get("prediction").asText()), objects(c.get("truth")));
    }
    JsonNode e = g.get("tally");
    assertThat(t.truePositives()).isEqualTo(e.get("true_positives").asLong());
    assertThat(t.predicted()).isEqualTo(e.get("predicted").asLong());
    assertThat(t.groundTruth()).isEqualTo(e.get("ground_truth").asLong());
    assertThat(t.hallucinated()).isEqualTo(e.get("hallucinated").asLong());
    assertThat(t.f1()).isCloseTo(e.get("f1").asDouble(), within(1e-12));
    assertThat(t.chair()).isCloseTo(e.get("chair").asDouble(), within(1e-12));
    assertThat(t.precision()).isCloseTo(e.get("precision").asDouble(), within(1e-12));
    assertThat(t.recall()).isCloseTo(e.get("recall").asDouble(), within(1e-12));
  }

  @Test
  void emptyTallyIsZeroNotNaN() {
    AnswerScoring.CaptionTally t = new AnswerScoring.CaptionTally();
    assertThat(t.f1()).isZero();
    assertThat(t.chair()).isZero();
  }

  @Test
  void popeReadsYesNoAsPopeDoesAndCountsItsMetrics() {
    assertThat(AnswerScoring.popeYes("Yes")).isTrue();
    assertThat(AnswerScoring.popeYes("no.")).isFalse();
    assertThat(AnswerScoring.popeYes("there is not one")).isFalse();
    assertThat(AnswerScoring.popeYes("red circle"))
        .isTrue(); // POPE: anything without no/not is a yes
    AnswerScoring.PopeTally t = new AnswerScoring.PopeTally();
    // tp 3, fn 1, fp 2, tn 4
    for (int i = 0; i < 3; i++) {
      t.add(true, true);
    }
    t.add(true, false);
    t.add(false, true);
    t.add(false, true);
    for (int i = 0; i < 4; i++) {
      t.add(false, false);
    }
    assertThat(t.questions()).isEqualTo(10);
    assertThat(t.accuracy()).isCloseTo(0.7, within(1e-12));
    assertThat(t.precision()).isCloseTo(0.6, within(1e-12));
    assertThat(t.recall()).isCloseTo(0.75, within(1e-12));
    assertThat(t.f1()).isCloseTo(2 * 0.6 * 0.75 / 1.35, within(1e-12));
    assertThat(t.yesRatio()).isCloseTo(0.5, within(1e-12));
  }

  @Test
  void chairSCountsCaptionsWithAHallucinationChairIObjects() {
    AnswerScoring.CaptionTally c = new AnswerScoring.CaptionTally();
    List<AnswerScoring.CaptionObject> truth =
        List.of(new AnswerScoring.CaptionObject("large", "red", "circle", "top"));
    assertThat(c.add(AnswerScoring.parseCaption("a large red circle at the top."), truth)).isZero();
    assertThat(
            c.add(
                AnswerScoring.parseCaption(
                    "a large red circle at the top , a small blue square at the center ."),
                truth))
        .isEqualTo(1);
    assertThat(c.chairS()).isCloseTo(0.5, within(1e-12));
    assertThat(c.chairI()).isCloseTo(1 / 3.0, within(1e-12));
    assertThat(c.chair()).isEqualTo(c.chairI());
  }
}
