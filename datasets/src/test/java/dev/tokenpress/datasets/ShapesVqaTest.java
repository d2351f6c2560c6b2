package dev.tokenpress.datasets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShapesVqaTest {
  private final ShapesVqa gen = new ShapesVqa(1234, 128);

  @Test
  void sameSeedGivesIdenticalScenes() {
    for (int i = 0; i < 20; i++) {
      Scene a = gen.scene("train", i);
      Scene b = new ShapesVqa(1234, 128).scene("train", i);
      assertThat(a.rgb()).isEqualTo(b.rgb());
      assertThat(a.mask()).isEqualTo(b.mask());
      assertThat(a.questions()).isEqualTo(b.questions());
    }
  }

  @Test
  void differentSeedsAndSplitsDiffer() {
    assertThat(gen.scene("train", 0).rgb())
        .isNotEqualTo(new ShapesVqa(99, 128).scene("train", 0).rgb());
    assertThat(gen.scene("train", 0).rgb()).isNotEqualTo(gen.scene("test", 0).rgb());
  }

  @Test
  void scenesRespectTheConstraints() {
    Map<String, Integer> kinds = new HashMap<>();
    int yes = 0;
    int no = 0;
    Set<Integer> counts = new HashSet<>();
    for (int i = 0; i < 300; i++) {
      Scene s = gen.scene("val", i);
      List<SceneObject> objs = s.objects();
      counts.add(objs.size());
      assertThat(objs.size()).isBetween(1, 4);
      Set<Integer> cells = new HashSet<>();
      Set<String> triples = new HashSet<>();
      for (int k = 0; k < objs.size(); k++) {
        SceneObject o = objs.get(k);
        assertThat(cells.add(o.row() * 3 + o.col())).as("one object per cell").isTrue();
        assertThat(triples.add(o.size() + "/" + o.color() + "/" + o.shape())).isTrue();
        // every mask pixel of object k lies inside its own cell, and the object is visible
        int pixels = 0;
        double cell = 128 / 3.0;
        for (int p = 0; p < s.mask().length; p++) {
          if (s.mask()[p] == k + 1) {
            pixels++;
            int x = p % 128;
            int y = p / 128;
            assertThat((int) (x / cell)).isEqualTo(o.col());
            assertThat((int) (y / cell)).isEqualTo(o.row());
          }
        }
        assertThat(pixels).isGreaterThan(40);
      }
      assertThat(s.questions()).hasSize(6);
      for (Question q : s.questions()) {
        kinds.merge(q.kind(), 1, Integer::sum);
        if (q.kind().equals("exists")) {
          boolean present =
              objs.stream()
                  .anyMatch(
                      o ->
                          q.question()
                              .equals("is there a " + o.colorName() + " " + o.shapeName() + "?"));
          assertThat(q.answer()).isEqualTo(present ? "yes" : "no");
          if (present) {
            yes++;
          } else {
            no++;
          }
        }
        if (q.kind().equals("count") && q.question().equals("how many objects are there?")) {
          assertThat(q.answer()).isEqualTo(Vocabulary.NUMBERS.get(objs.size()));
        }
        if (q.kind().equals("caption")) {
          assertThat(q.answer()).isEqualTo(s.caption()).startsWith("a ").endsWith(".");
        }
      }
    }
    assertThat(kinds).containsOnlyKeys(Question.KINDS);
    assertThat(yes).isEqualTo(no);
    assertThat(counts).containsExactlyInAnyOrder(1, 2, 3, 4);
  }

  @Test
  void answersAreUniquelyDetermined() {
    for (int i = 0; i < 300; i++) {
      Scene s = gen.scene("train", i);
      for (Question q : s.questions()) {
        if (q.kind().equals("color")) {
          assertThat(Vocabulary.COLORS).contains(q.answer());
        }
        if (q.kind().equals("position")) {
          String obj = q.question().substring("where is the ".length(), q.question().length() - 1);
          long matches =
              s.objects().stream()
                  .filter(
                      o ->
                          obj.equals(o.colorName() + " " + o.shapeName())
                              || obj.equals(
                                  o.sizeName() + " " + o.colorName() + " " + o.shapeName()))
                  .count();
          assertThat(matches).as(q.question()).isEqualTo(1);
        }
      }
    }
  }

  @Test
  void rejectsBadArguments() {
    assertThatThrownBy(() -> gen.scene("dev", 0))
        .hasMessageContaining("split must be one of [train, val, test]");
    assertThatThrownBy(() -> new ShapesVqa(1, 16)).hasMessageContaining("imageSize");
  }

  @Test
  void writerProducesTheDocumentedLayout(@TempDir Path dir) throws Exception {
    ShapesVqaWriter w = new ShapesVqaWriter(gen, 2);
    w.writeSplit(dir, "test", 5);
    w.writeDescriptor(dir, new int[] {0, 0, 5});
    assertThat(Files.readAllLines(dir.resolve("test/questions.jsonl"))).hasSize(30);
    assertThat(Files.readAllLines(dir.resolve("test/scenes.jsonl"))).hasSize(5);
    assertThat(dir.resolve("test/images/000004.png")).exists();
    assertThat(dir.resolve("test/masks/000004.png")).exists();
    var img = javax.imageio.ImageIO.read(dir.resolve("test/images/000003.png").toFile());
    Scene s = gen.scene("test", 3);
    int rgb = img.getRGB(7, 11);
    int p = (11 * 128 + 7) * 3;
    assertThat((rgb >> 16) & 0xff).isEqualTo(s.rgb()[p] & 0xff);
    assertThat((rgb >> 8) & 0xff).isEqualTo(s.rgb()[p + 1] & 0xff);
    assertThat(rgb & 0xff).isEqualTo(s.rgb()[p + 2] & 0xff);
    assertThat(Files.readString(dir.resolve("dataset.json")))
        .contains("\"splits\": {\"train\": 0, \"val\": 0, \"test\": 5}");
  }

  /**
   * SHA-256 of the first 300 test scenes' questions (id, kind, text, answer), computed before the
   * sampling label.
   */
  private static final String QUESTIONS_DIGEST =
      "acb9079065af192866642d3f6025141e73878c3ec708b8eff40745221cdc8e60";

  @Test
  void samplingLabelsTheAbsentObjectQuestionsWithoutChangingAnyQuestion() throws Exception {
    java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
    int adversarial = 0;
    int random = 0;
    for (int i = 0; i < 300; i++) {
      Scene s = gen.scene("test", i);
      for (Question q : s.questions()) {
        sha.update(
            (q.id() + "|" + q.kind() + "|" + q.question() + "|" + q.answer() + "\n")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
        boolean negative = q.kind().equals("exists") && q.answer().equals("no");
        assertThat(q.sampling() != null).as(q.id()).isEqualTo(negative);
        if (Question.ADVERSARIAL.equals(q.sampling())) {
          adversarial++;
          String[] w = q.question().replace("?", "").split(" ");
          String color = w[3];
          String shape = w[4];
          assertThat(s.objects())
              .as(q.id())
              .anyMatch(o -> o.colorName().equals(color) || o.shapeName().equals(shape));
        } else if (Question.RANDOM.equals(q.sampling())) {
          random++;
        }
      }
    }
    assertThat(adversarial + random).isEqualTo(300);
    assertThat(adversarial).isBetween(100, 160);
    assertThat(java.util.HexFormat.of().formatHex(sha.digest())).isEqualTo(QUESTIONS_DIGEST);
  }
}
