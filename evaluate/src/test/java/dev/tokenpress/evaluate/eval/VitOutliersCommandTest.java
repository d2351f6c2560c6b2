package dev.tokenpress.evaluate.eval;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenpress.runtime.testing.TinyLlavaBundle;
import org.junit.jupiter.api.Test;

/** {@code diagnose vit-outliers} on a few images of the bundled model. */
class VitOutliersCommandTest {

  @Test
  void reportsNormsClsConcentrationAndWhereTheOutliersLie() throws Exception {
    JsonNode o =
        new ObjectMapper()
            .readTree(
                VitOutliersCommand.run(
                    new String[] {
                      "--bundle", TinyLlavaBundle.bundle().toString(), "--images", "3"
                    }));
    int f = o.get("vision_feature_layer").asInt();
    assertThat(o.get("k").asInt()).isEqualTo(4);
    assertThat(o.get("patch_norms")).hasSize(f + 2);
    assertThat(o.get("cls_attention")).hasSize(f + 1);
    for (JsonNode n : o.get("patch_norms")) {
      assertThat(n.get("max_over_median").asDouble()).isGreaterThanOrEqualTo(1.0);
      assertThat(n.get("tokens_above_3x_median").asDouble()).isBetween(0.0, 256.0);
    }
    for (JsonNode c : o.get("cls_attention")) {
      // the top k hold at least their uniform share, and entropy is normalised
      assertThat(c.get("top_k_mass").asDouble())
          .isBetween(c.get("uniform_top_k_mass").asDouble(), 1.0);
      assertThat(c.get("normalised_entropy").asDouble()).isBetween(0.0, 1.0);
    }
    JsonNode d = o.get("damro_outliers");
    assertThat(d.get("on_object_share").asDouble()).isBetween(0.0, 1.0);
    assertThat(d.get("object_patch_share").asDouble()).isBetween(0.0, 1.0);
  }
}
