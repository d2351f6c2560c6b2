package dev.tokenpress.evaluate.report;

import dev.tokenpress.operators.json.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The self-contained HTML report of an evaluation: accuracy against mean kept visual tokens, FLOPs,
 * KV bytes and wall time (one chart each, Apache ECharts), each with its Pareto front highlighted
 * and the 95 % intervals as error bars, then a table per question kind and the plans in canonical
 * form with their hashes.
 *
 * <p>The page needs no network: ECharts (from its WebJar on the classpath), the page's own script
 * and the data are inlined. The data is one JSON object in a {@code <script
 * type="application/json">} element; the page builds the charts and tables from it with DOM text
 * nodes only (labels and plans are never parsed as HTML). When every chart has rendered, {@code
 * <body data-charts-rendered>} holds the number of charts.
 *
 * <p>Error bars: the interval of a plan's accuracy loss against the empty plan (paired bootstrap),
 * drawn around the plan's accuracy, i.e. from {@code accuracy - (hi - loss)} to {@code accuracy +
 * (loss - lo)}; the empty plan has none.
 */
public final class HtmlReport {
  private static final String RESOURCES = "dev/tokenpress/evaluate/report/";
  private static final String ECHARTS =
      "META-INF/resources/webjars/echarts/" + echartsVersion() + "/dist/echarts.min.js";
  private static final Pattern SCRIPT_END = Pattern.compile("</(script)", Pattern.CASE_INSENSITIVE);

  private HtmlReport() {}

  /** Writes the report to {@code file} atomically (a temporary file beside it, then a move). */
  public static void write(
      Path file, String title, List<PlanSummary> plans, Map<String, String> context) {
    String html = render(title, plans, context);
    try {
      Path dir = file.toAbsolutePath().getParent();
      Files.createDirectories(dir);
      Path tmp = Files.createTempFile(dir, ".report-", ".tmp");
      Files.writeString(tmp, html, StandardCharsets.UTF_8);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write report " + file, e);
    }
  }

  /**
   * The page.
   *
   * @param title page title
   * @param plans the evaluated plans (at least one)
   * @param context lines shown under the title (model, sample, seed, ...), in order
   */
  public static String render(String title, List<PlanSummary> plans, Map<String, String> context) {
    Objects.requireNonNull(title, "title");
    if (plans.isEmpty()) {
      throw new IllegalArgumentException("a report needs at least one plan");
    }
    String template = resource(RESOURCES + "report.html");
    return template
        .replace("{{TITLE}}", escapeHtml(title))
        .replace("/*{{ECHARTS}}*/", scriptSafe(resource(ECHARTS)))
        .replace("/*{{REPORT_JS}}*/", scriptSafe(resource(RESOURCES + "report.js")))
        .replace("{{DATA}}", scriptSafe(Json.write(data(title, plans, context))));
  }

  /** The report's data object (what the page script reads). */
  static Map<String, Object> data(
      String title, List<PlanSummary> plans, Map<String, String> context) {
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("title", title);
    d.put("context", new LinkedHashMap<>(context));
    List<Object> axes = new ArrayList<>();
    for (CostAxis axis : CostAxis.values()) {
      double[] cost = new double[plans.size()];
      double[] acc = new double[plans.size()];
      for (int i = 0; i < plans.size(); i++) {
        cost[i] = axis.of(plans.get(i));
        acc[i] = plans.get(i).accuracy();
      }
      List<Object> front = new ArrayList<>();
      for (int i : ParetoFront.indices(cost, acc)) {
        front.add(i);
      }
      Map<String, Object> a = new LinkedHashMap<>();
      a.put("key", axis.key());
      a.put("title", axis.title());
      a.put("pareto", front);
      axes.add(a);
    }
    d.put("axes", axes);
    List<Object> rows = new ArrayList<>();
    for (PlanSummary s : plans) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("label", s.label());
      r.put("plan", s.planJson());
      r.put("hash", s.planHash());
      r.put("images", s.images());
      r.put("questions", s.questions());
      r.put("accuracy", s.accuracy());
      r.put("loss", interval(s.loss()));
      r.put("accuracy_by_kind", new TreeMap<>(s.accuracyByKind()));
      Map<String, Object> lk = new TreeMap<>();
      s.lossByKind().forEach((k, v) -> lk.put(k, interval(v)));
      r.put("loss_by_kind", lk);
      Map<String, Object> cost = new LinkedHashMap<>();
      for (CostAxis axis : CostAxis.values()) {
        cost.put(axis.key(), finiteOrNull(axis.of(s)));
      }
      r.put("cost", cost);
      Map<String, Object> m = new TreeMap<>();
      s.metrics().forEach((k, v) -> m.put(k, finiteOrNull(v)));
      r.put("metrics", m);
      rows.add(r);
    }
    d.put("plans", rows);
    return d;
  }

  private static Object interval(Interval i) {
    if (i == null) {
      return null;
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("estimate", i.estimate());
    m.put("lo", i.lo());
    m.put("hi", i.hi());
    return m;
  }

  private static Object finiteOrNull(double v) {
    return Double.isFinite(v) ? v : null;
  }

  /**
   * Text that may sit inside a {@code <script>} element: {@code </script} and {@code <!--} (which
   * can only occur inside JavaScript strings, regular expressions or comments, or JSON strings)
   * become {@code <\/script} and {@code <\!--}, which mean the same there.
   */
  static String scriptSafe(String s) {
    return SCRIPT_END.matcher(s).replaceAll("<\\\\/$1").replace("<!--", "<\\!--");
  }

  static String escapeHtml(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '<' -> sb.append("&lt;");
        case '>' -> sb.append("&gt;");
        case '&' -> sb.append("&amp;");
        case '"' -> sb.append("&quot;");
        case '\'' -> sb.append("&#39;");
        default -> sb.append(c);
      }
    }
    return sb.toString();
  }

  private static String resource(String name) {
    try (InputStream in = HtmlReport.class.getClassLoader().getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("missing classpath resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read classpath resource " + name, e);
    }
  }

  private static String echartsVersion() {
    String v = resource(RESOURCES + "echarts.version").strip();
    if (v.isEmpty()) {
      throw new IllegalStateException("empty " + RESOURCES + "echarts.version");
    }
    return v;
  }
}
