package dev.tokenpress.evaluate.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenpress.runtime.cli.UsageException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportCommandTest {
  @TempDir Path dir;

  /**
   * An `eval` summary and details file for a plan answering correctly on the images in {@code
   * right}.
   */
  private String run(String label, String plan, String split, int wrongEvery) throws Exception {
    String summary =
        "{\"bundle\":\"/b\",\"plan\":"
            + quote(plan)
            + ",\"split\":\""
            + split
            + "\",\"seed\":1234,"
            + "\"start\":0,\"images\":20,\"kinds\":\"exists,color,count,position,caption\",\"questions\":100,"
            + "\"accuracy\":{},\"overall\":0.5,\"caption_object_f1\":0.7,\"chair\":0.1,\"mean_visual_tokens_kept\":"
            + (plan.equals("[]") ? 256 : 64)
            + ",\"mean_kv_bytes\":1000,\"flops_ratio_vs_empty_plan\":{\"total\":"
            + (plan.equals("[]") ? 1 : 0.6)
            + "},\"ms_per_question\":12.5}";
    List<String> lines = new ArrayList<>();
    int n = 0;
    for (int i = 0; i < 20; i++) {
      for (String k : List.of("exists", "color", "count", "position")) {
        boolean correct = wrongEvery == 0 || n++ % wrongEvery != 0;
        lines.add(
            "{\"image\":\""
                + i
                + "\",\"question_id\":\""
                + i
                + "-"
                + k
                + "\",\"kind\":\""
                + k
                + "\",\"question\":\"q\",\"expected\":\"a\",\"answer\":\"a\",\"correct\":"
                + correct
                + "}");
      }
      lines.add(
          "{\"image\":\""
              + i
              + "\",\"question_id\":\""
              + i
              + "-caption\",\"kind\":\"caption\",\"question\":\"q\","
              + "\"expected\":\"a\",\"answer\":\"b\",\"correct\":null}");
    }
    Path s = Files.writeString(dir.resolve(label + ".json"), summary);
    Path d = Files.write(dir.resolve(label + ".jsonl"), lines);
    return label + "=" + s + ":" + d;
  }

  private static String quote(String s) {
    return "\"" + s.replace("\"", "\\\"") + "\"";
  }

  @Test
  void writesTheReportOfSeveralRuns() throws Exception {
    String runs =
        String.join(
            ",",
            run("empty", "[]", "test", 0),
            run("vtc", "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"}]", "test", 4));
    Path out = dir.resolve("r/report.html");
    String json =
        ReportCommand.run(
            new String[] {"--runs", runs, "--out", out.toString(), "--resamples", "200"});
    assertThat(json).contains("\"plans\":2");
    String html = Files.readString(out);
    assertThat(html)
        .contains("\"label\":\"vtc\"")
        .contains("\"accuracy\":0.75")
        .contains("vtc-cls");
    assertThat(html).contains("\"loss\":{\"estimate\":0.25");
  }

  @Test
  void refusesRunsThatCannotBeCompared() throws Exception {
    String empty = run("empty", "[]", "test", 0);
    String vtc = run("vtc", "[{\"op\":\"vtc-cls\",\"keep\":64,\"layers\":\"0..0\"}]", "test", 4);
    String val = run("val", "[{\"op\":\"random-drop\",\"keep\":8}]", "val", 4);
    Path out = dir.resolve("x.html");
    assertThatThrownBy(
            () ->
                ReportCommand.run(
                    new String[] {"--runs", vtc + "," + empty, "--out", out.toString()}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("must be the empty plan");
    assertThatThrownBy(
            () ->
                ReportCommand.run(
                    new String[] {"--runs", empty + "," + val, "--out", out.toString()}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("split");
    assertThatThrownBy(
            () -> ReportCommand.run(new String[] {"--runs", empty, "--out", out.toString()}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("at least one other run");
    assertThatThrownBy(
            () ->
                ReportCommand.run(new String[] {"--runs", "nolabel.json", "--out", out.toString()}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("LABEL=SUMMARY.json:DETAILS.jsonl");
    assertThat(out).doesNotExist();
  }
}
