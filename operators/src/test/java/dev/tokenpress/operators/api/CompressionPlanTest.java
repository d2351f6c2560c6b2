package dev.tokenpress.operators.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.List;
import org.junit.jupiter.api.Test;

class CompressionPlanTest {

  static final ModelShape LLAVA = new ModelShape(24, 16, 24, 24, true, 22, 32, 32, 32, 4096);
  static final ModelShape TINY = new ModelShape(4, 2, 4, 4, true, 2, 4, 4, 2, 64);

  private static final String EXAMPLE =
      "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"}, {\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5}]";
  private static final String EXAMPLE_CANONICAL =
      "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"1..L-2\"},"
          + "{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5,\"mode\":\"inplace\"}]";

  @Test
  void parsesTheDocumentedExample() {
    CompressionPlan plan = CompressionPlan.parse(EXAMPLE);
    assertThat(plan.operators())
        .containsExactly(
            new VtcClsConfig(Budget.keep(64), LayerRange.parse("1..L-2")),
            new FastVConfig(2, Budget.dropRatio(0.5), FastVConfig.Mode.INPLACE));
    assertThat(plan.toJson()).isEqualTo(EXAMPLE_CANONICAL);
    assertThat(plan.toString()).isEqualTo(EXAMPLE_CANONICAL);
    assertThat(CompressionPlan.parse(plan.toJson())).isEqualTo(plan);
  }

  @Test
  void planHashIsSha256OfCanonicalForm() {
    // Expected values: python3 -c "import hashlib;
    // print(hashlib.sha256(b'<canonical>').hexdigest())"
    assertThat(CompressionPlan.parse(EXAMPLE).planHash())
        .isEqualTo("f440ae51446308df29fa22e8986979c88402a7e806cffbfa09c8368e5de8079e");
    assertThat(CompressionPlan.empty().planHash())
        .isEqualTo("4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945");
  }

  @Test
  void equivalentSpellingsHaveOneCanonicalFormAndHash() {
    CompressionPlan a = CompressionPlan.parse("[{\"op\":\"fastv\"}]");
    CompressionPlan b =
        CompressionPlan.parse(
            "[ {\"mode\":\"inplace\", \"drop_ratio\": 0.50, \"layer\": 2.0, \"op\": \"fastv\"} ]");
    CompressionPlan c = CompressionPlan.of(FastVConfig.defaults());
    assertThat(a).isEqualTo(b).isEqualTo(c);
    assertThat(a.toJson())
        .isEqualTo(b.toJson())
        .isEqualTo("[{\"op\":\"fastv\",\"layer\":2,\"drop_ratio\":0.5,\"mode\":\"inplace\"}]");
    assertThat(a.planHash()).isEqualTo(b.planHash()).isEqualTo(c.planHash());
    assertThat(a.planHash())
        .isNotEqualTo(CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":3}]").planHash());
    // A different budget form is a different plan, even where it resolves the same.
    assertThat(CompressionPlan.parse("[{\"op\":\"fastv\",\"keep_ratio\":0.5}]")).isNotEqualTo(a);
  }

  @Test
  void everyOperatorRoundTrips() {
    String json =
        "[{\"op\":\"random-drop\",\"keep_ratio\":0.25,\"seed\":-7},"
            + "{\"op\":\"vtc-cls\",\"drop_ratio\":0.75,\"layers\":\"16..L-2\"},"
            + "{\"op\":\"fastv\",\"layer\":3,\"keep\":288,\"mode\":\"inplace\"}]";
    CompressionPlan plan = CompressionPlan.parse(json);
    assertThat(plan.toJson()).isEqualTo(json);
    assertThat(plan.operators().get(0)).isEqualTo(new RandomDropConfig(Budget.keepRatio(0.25), -7));
    assertThat(CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":3}]").toJson())
        .isEqualTo("[{\"op\":\"random-drop\",\"keep\":3,\"seed\":0}]");
    assertThat(CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep\":3}]").toJson())
        .isEqualTo("[{\"op\":\"vtc-cls\",\"keep\":3,\"layers\":\"16..L-2\"}]");
  }

  @Test
  void registryCoversEverySealedConfig() {
    assertThat(CompressionPlan.operatorNames())
        .containsExactly(
            "random-drop",
            "vtc-cls",
            "fastv",
            "tome",
            "vmtc",
            "mustdrop",
            "damro",
            "var",
            "cmai",
            "zipvl");
    assertThat(OperatorConfig.class.getPermittedSubclasses())
        .hasSize(CompressionPlan.operatorNames().size());
  }

  @Test
  void emptyPlan() {
    CompressionPlan p = CompressionPlan.parse(" [ ] ");
    assertThat(p.isEmpty()).isTrue();
    assertThat(p).isEqualTo(CompressionPlan.empty());
    assertThat(p.toJson()).isEqualTo("[]");
    assertThat(p.bind(LLAVA)).isEmpty();
  }

  @Test
  void strictParsingNamesIndexFieldAndAllowedValues() {
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastV\"}]"))
        .hasMessage(
            "plan[0]: unknown operator \"fastV\"; allowed: [random-drop, vtc-cls, fastv, tome, vmtc, mustdrop, damro, var, cmai, zipvl]");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"fastv\"},{\"op\":\"fastv\",\"ratio\":0.5}]"))
        .hasMessage(
            "plan[1]: fastv: unknown key \"ratio\"; allowed keys: "
                + "[op, layer, keep, keep_ratio, drop_ratio, mode]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":0}]"))
        .hasMessage("plan[0]: fastv.layer must be in [1, numLayers-1], got 0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":1.5}]"))
        .hasMessage("plan[0]: fastv.layer must be an integer, got 1.5");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":\"2\"}]"))
        .hasMessage("plan[0]: fastv.layer must be an integer, got \"2\"");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"mode\":\"mask\"}]"))
        .hasMessage("plan[0]: fastv.mode \"mask\" is not supported yet; supported: [inplace]");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"mode\":\"Inplace\"}]"))
        .hasMessage("plan[0]: fastv.mode must be one of [inplace, mask], got \"Inplace\"");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"fastv\",\"keep\":3,\"drop_ratio\":0.5}]"))
        .hasMessage(
            "plan[0]: fastv: give only one of [keep, keep_ratio, drop_ratio], got both \"keep\" and "
                + "\"drop_ratio\"");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"drop_ratio\":1}]"))
        .hasMessage("plan[0]: fastv.drop_ratio must be in [0, 1), got 1.0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep\":0}]"))
        .hasMessage("plan[0]: vtc-cls.keep must be >= 1, got 0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep_ratio\":0}]"))
        .hasMessage("plan[0]: vtc-cls.keep_ratio must be in (0, 1], got 0.0");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vtc-cls\"}]"))
        .hasMessage("plan[0]: vtc-cls: one of [keep, keep_ratio, drop_ratio] is required");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep\":4,\"layers\":\"1..M\"}]"))
        .hasMessageStartingWith("plan[0]: vtc-cls.layers: invalid layer range \"1..M\"");
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":4,\"seed\":1e30}]"))
        .hasMessage("plan[0]: random-drop.seed must be an integer in the 64-bit range, got 1E+30");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"layer\":2}]"))
        .hasMessage(
            "plan[0] needs \"op\" (a string, one of [random-drop, vtc-cls, fastv, tome, vmtc, mustdrop, damro, var, cmai, zipvl])");
    assertThatThrownBy(() -> CompressionPlan.parse("[3]"))
        .hasMessage(
            "plan[0] must be an object with an \"op\" key (one of [random-drop, vtc-cls, fastv, tome, vmtc, mustdrop, damro, var, cmai, zipvl]), e.g. "
                + "{\"op\":\"fastv\",\"layer\":2}; got a number");
    assertThatThrownBy(() -> CompressionPlan.parse("{\"op\":\"fastv\"}"))
        .hasMessageStartingWith("plan must be a JSON array of operator objects");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",}]"))
        .hasMessageStartingWith("plan: invalid JSON at offset 15");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"op\":\"fastv\"}]"))
        .hasMessageContaining("duplicate key \"op\"");
  }

  @Test
  void bindValidatesAgainstTheModel() {
    CompressionPlan plan = CompressionPlan.parse(EXAMPLE);
    List<TokenOperator> ops = plan.bind(LLAVA);
    assertThat(ops).extracting(TokenOperator::name).containsExactly("vtc-cls", "fastv");
    assertThat(CompressionPlan.signals(ops, LLAVA))
        .hasSize(22 + 1)
        .contains(
            new Signal.ClsAttention(1),
            new Signal.ClsAttention(22),
            new Signal.QueryRowAttention(1, QueryRows.LAST_PROMPT_TOKEN))
        .doesNotContain(new Signal.ClsAttention(0), new Signal.ClsAttention(23));

    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":4}]").bind(TINY))
        .hasMessage(
            "plan[0]: fastv.layer must be in [1, numLayers-1] = [1, 3] for this model, got 4");
    assertThatThrownBy(() -> CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep\":4}]").bind(TINY))
        .hasMessage(
            "plan[0]: vtc-cls.layers \"16..L-2\" resolves to [16, 2] for L=4 layers; it must satisfy "
                + "0 <= first <= last <= L-1 = 3");
    ModelShape noCls = new ModelShape(4, 2, 4, 4, false, 2, 4, 4, 2, 64);
    assertThatThrownBy(
            () ->
                CompressionPlan.parse("[{\"op\":\"vtc-cls\",\"keep\":4,\"layers\":\"0..L-2\"}]")
                    .bind(noCls))
        .hasMessage("plan[0]: vtc-cls needs a ViT with a CLS token; this model has none");
  }

  @Test
  void bindRejectsAKeepAboveTheVisualTokensThatReachIt() {
    // TINY has 4x4 = 16 visual tokens per image.
    assertThat(CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":16}]").bind(TINY))
        .hasSize(1);
    assertThatThrownBy(
            () -> CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep\":17}]").validate(TINY))
        .hasMessage(
            "plan[0]: random-drop.keep must be in [1, 16]: at most 16 visual tokens reach it (the model "
                + "has 16 per image), so it would keep them all and do nothing; got 17");
    String vtc = "{\"op\":\"vtc-cls\",\"keep\":8,\"layers\":\"0..L-2\"}";
    CompressionPlan.parse("[" + vtc + ",{\"op\":\"fastv\",\"layer\":2,\"keep\":8}]").validate(TINY);
    assertThatThrownBy(
            () ->
                CompressionPlan.parse("[" + vtc + ",{\"op\":\"fastv\",\"layer\":2,\"keep\":9}]")
                    .validate(TINY))
        .hasMessage(
            "plan[1]: fastv.keep must be in [1, 8]: at most 8 visual tokens reach it (the "
                + "model has 16 per image, the operators before it keep 8), so it would keep them all and do "
                + "nothing; got 9");
    // VISUAL_TOKENS operators run before PREFILL_AFTER ones whatever their plan order.
    assertThatThrownBy(
            () ->
                CompressionPlan.parse("[{\"op\":\"fastv\",\"layer\":2,\"keep\":12}," + vtc + "]")
                    .validate(TINY))
        .hasMessageStartingWith("plan[0]: fastv.keep must be in [1, 8]");
    // Chained VISUAL_TOKENS operators: the second sees what the first keeps (round(0.25 * 16) = 4).
    assertThatThrownBy(
            () ->
                CompressionPlan.parse("[{\"op\":\"random-drop\",\"keep_ratio\":0.25}," + vtc + "]")
                    .validate(TINY))
        .hasMessageStartingWith("plan[1]: vtc-cls.keep must be in [1, 4]");
    // Ratios always scale to what reaches the operator.
    CompressionPlan.parse("[" + vtc + ",{\"op\":\"fastv\",\"layer\":2,\"keep_ratio\":1.0}]")
        .validate(TINY);
  }

  @Test
  void planAndConfigsAreSerializable() throws Exception {
    CompressionPlan plan = CompressionPlan.parse(EXAMPLE);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(plan);
    }
    try (ObjectInputStream in =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      CompressionPlan back = (CompressionPlan) in.readObject();
      assertThat(back).isEqualTo(plan);
      assertThat(back.planHash()).isEqualTo(plan.planHash());
    }
  }
}
