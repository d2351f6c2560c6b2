package dev.tokenpress.evaluate.report;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;

/**
 * Opens the report in headless Chromium (Debian's {@code chromium} and {@code chromium-driver},
 * which {@code .ci/run} installs): the four charts render with one point per plan that has the
 * cost, the Pareto lines have the front's points, the tables have a row per plan, and the console
 * shows no error. Leaves a screenshot in {@code target/report-screenshot.png}.
 *
 * <p>Without Chromium the test is skipped with a message, unless {@code
 * TOKENPRESS_REQUIRE_BROWSER=1} (set by {@code .ci/run}), where it fails.
 */
class HtmlReportBrowserTest {
  private static final Path CHROMIUM =
      Path.of(System.getProperty("tokenpress.chromium", "/usr/bin/chromium"));
  private static final Path DRIVER =
      Path.of(System.getProperty("tokenpress.chromedriver", "/usr/bin/chromedriver"));

  @TempDir Path dir;

  @Test
  void chartsRenderWithTheRightPointsAndNoConsoleErrors() throws Exception {
    boolean present = Files.isExecutable(CHROMIUM) && Files.isExecutable(DRIVER);
    if (!present && "1".equals(System.getenv("TOKENPRESS_REQUIRE_BROWSER"))) {
      throw new AssertionError(
          "TOKENPRESS_REQUIRE_BROWSER=1 but "
              + CHROMIUM
              + " or "
              + DRIVER
              + " is missing "
              + "(apt-get install chromium chromium-driver)");
    }
    Assumptions.assumeTrue(
        present,
        "no headless Chromium at "
            + CHROMIUM
            + " / "
            + DRIVER
            + ": browser test skipped (apt-get install chromium chromium-driver)");

    List<PlanSummary> plans = ReportFixtures.plans();
    Path file = dir.resolve("report.html");
    HtmlReport.write(file, "Browser test", plans, Map.of("model", "fixture"));
    Map<String, Object> data = HtmlReport.data("Browser test", plans, Map.of("model", "fixture"));

    ChromeOptions options = new ChromeOptions();
    options.setBinary(CHROMIUM.toFile());
    options.addArguments(
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1800",
        "--user-data-dir=" + dir.resolve("profile"));
    LoggingPreferences logs = new LoggingPreferences();
    logs.enable(LogType.BROWSER, Level.ALL);
    options.setCapability("goog:loggingPrefs", logs);
    ChromeDriverService service =
        new ChromeDriverService.Builder()
            .usingDriverExecutable(DRIVER.toFile())
            .usingAnyFreePort()
            .build();
    ChromeDriver driver = new ChromeDriver(service, options);
    try {
      driver.get(file.toUri().toString());
      JavascriptExecutor js = driver;
      long deadline = System.nanoTime() + 30_000_000_000L;
      Object rendered = null;
      while (!"4".equals(rendered) && System.nanoTime() < deadline) {
        Thread.sleep(100);
        rendered = js.executeScript("return document.body.getAttribute('data-charts-rendered')");
      }
      if (!"4".equals(rendered)) {
        throw new AssertionError(
            "charts did not render within 30 s (data-charts-rendered="
                + rendered
                + "); console: "
                + driver.manage().logs().get(LogType.BROWSER).getAll());
      }
      @SuppressWarnings("unchecked")
      List<Map<String, Object>> axes = (List<Map<String, Object>>) data.get("axes");
      for (Map<String, Object> axis : axes) {
        String key = (String) axis.get("key");
        long expectedPoints =
            plans.stream()
                .filter(p -> Double.isFinite(CostAxis.valueOf(axisName(key)).of(p)))
                .count();
        long expectedBars =
            plans.stream()
                .filter(
                    p -> p.loss() != null && Double.isFinite(CostAxis.valueOf(axisName(key)).of(p)))
                .count();
        String q =
            "var o = echarts.getInstanceByDom(document.getElementById('chart-"
                + key
                + "')).getOption();"
                + "return [o.series[0].data.length, o.series[1].data.length, o.series[2].data.length];";
        @SuppressWarnings("unchecked")
        List<Long> counts = (List<Long>) js.executeScript(q);
        assertThat(counts.get(0)).as("points on %s", key).isEqualTo(expectedPoints);
        assertThat(counts.get(1))
            .as("Pareto points on %s", key)
            .isEqualTo((long) ((List<?>) axis.get("pareto")).size());
        assertThat(counts.get(2)).as("error bars on %s", key).isEqualTo(expectedBars);
        // the chart drew on its canvas (not a blank element)
        Object painted =
            js.executeScript(
                "var c = document.querySelector('#chart-"
                    + key
                    + " canvas');"
                    + "return c !== null && c.width > 0 && c.height > 0;");
        assertThat(painted).isEqualTo(true);
      }
      Object rows =
          js.executeScript(
              "return [document.querySelectorAll('#kinds tr').length,"
                  + " document.querySelectorAll('#plans tr').length, document.querySelectorAll('#metrics tr').length];");
      assertThat(rows).isEqualTo(List.of(7L, 7L, 7L));
      // the awkward label is text, not markup
      Object label =
          js.executeScript(
              "return document.querySelectorAll('#plans tr')[5].cells[0].textContent;");
      assertThat(label).isEqualTo("tome r=8 </script><b>x</b>");

      File shot = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE);
      Path target = Path.of("target", "report-screenshot.png");
      Files.createDirectories(target.getParent());
      Files.copy(shot.toPath(), target, StandardCopyOption.REPLACE_EXISTING);
      assertThat(Files.size(target)).isGreaterThan(10_000);

      List<LogEntry> errors =
          driver.manage().logs().get(LogType.BROWSER).getAll().stream()
              .filter(e -> e.getLevel().intValue() >= Level.WARNING.intValue())
              .toList();
      assertThat(errors).as("console errors and warnings").isEmpty();
    } finally {
      driver.quit();
    }
  }

  private static String axisName(String key) {
    for (CostAxis a : CostAxis.values()) {
      if (a.key().equals(key)) {
        return a.name();
      }
    }
    throw new IllegalArgumentException(key);
  }
}
