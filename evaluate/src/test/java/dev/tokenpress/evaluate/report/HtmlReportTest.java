package dev.tokenpress.evaluate.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.operators.json.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HtmlReportTest {
  @TempDir Path dir;

  @Test
  void pageIsSelfContainedAndCarriesTheDataIntact() throws Exception {
    List<PlanSummary> plans = ReportFixtures.plans();
    Path file = dir.resolve("report.html");
    HtmlReport.write(file, "Plans <on> sample & co", plans, Map.of("model", "tiny-llava-shapes"));
    String html = Files.readString(file);

    // nothing is fetched when the page opens: no external scripts, styles, images or frames in the
    // markup (the scripts' bodies, ECharts included, are only JavaScript strings here)
    String markup = html.replaceAll("(?is)(<script[^>]*>).*?</script>", "$1</script>");
    assertThat(markup).doesNotContainPattern("(?i)\\s(src|href)=");
    assertThat(markup).doesNotContainPattern("(?i)url\\(");
    assertThat(html).contains("<title>Plans &lt;on&gt; sample &amp; co</title>");
    // three scripts: the data, ECharts, the page's own; a label cannot end the data script early
    assertThat(Pattern.compile("(?i)</script>").matcher(html).results().count()).isEqualTo(3);
    assertThat(html).contains("echarts");

    Matcher m =
        Pattern.compile(
                "<script type=\"application/json\" id=\"report-data\">(.*?)</script>",
                Pattern.DOTALL)
            .matcher(html);
    assertThat(m.find()).isTrue();
    // the page reads the data with JSON.parse of the element's text: "<\/" is "</" in JSON strings
    @SuppressWarnings("unchecked")
    Map<String, Object> data = (Map<String, Object>) Json.parse(m.group(1).replace("<\\/", "</"));
    assertThat(Json.write(data))
        .isEqualTo(
            Json.write(
                HtmlReport.data(
                    "Plans <on> sample & co", plans, Map.of("model", "tiny-llava-shapes"))));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> rows = (List<Map<String, Object>>) data.get("plans");
    assertThat(rows).hasSize(6);
    assertThat(rows.get(4).get("label")).isEqualTo("tome r=8 </script><b>x</b>");
    assertThat(rows.get(0).get("loss")).isNull();
    @SuppressWarnings("unchecked")
    Map<String, Object> cost = (Map<String, Object>) rows.get(5).get("cost");
    assertThat(cost.get("kv_bytes")).isNull(); // not measured: no point on the KV chart
  }

  @Test
  void paretoFrontPerAxisIsComputedFromTheCosts() {
    Map<String, Object> data = HtmlReport.data("t", ReportFixtures.plans(), Map.of());
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> axes = (List<Map<String, Object>>) data.get("axes");
    assertThat(axes)
        .extracting(a -> a.get("key"))
        .containsExactly("visual_tokens", "flops", "kv_bytes", "wall_ms");
    // FLOPs: tome 0.38 (0.75), vtc-cls 0.57 (0.79), kv-off 0.85 (0.80), empty 1.0 (0.81); random
    // and fastv beaten
    assertThat(axes.get(1).get("pareto")).isEqualTo(List.of(4, 2, 5, 0));
    // KV bytes: the plan without a KV figure takes no part
    assertThat(axes.get(2).get("pareto")).isEqualTo(List.of(3, 2, 0));
  }

  @Test
  void scriptSafeEscapesOnlyScriptEnds() {
    assertThat(HtmlReport.scriptSafe("a</ScRiPt>b</span><!--c"))
        .isEqualTo("a<\\/ScRiPt>b</span><\\!--c");
  }

  @Test
  void refusesAnEmptyReport() {
    assertThatThrownBy(() -> HtmlReport.render("t", List.of(), Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at least one plan");
  }
}
