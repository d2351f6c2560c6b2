package dev.tokenpress.datasets;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Command line: {@code ShapesVqaCli --out DIR [--seed 1234] [--train 20000] [--val 500] [--test
 * 1000] [--size 128] [--threads N]}.
 */
public final class ShapesVqaCli {
  private ShapesVqaCli() {}

  public static void main(String[] args) throws IOException {
    Path out = null;
    long seed = 1234;
    int[] counts = {20000, 500, 1000};
    int size = 128;
    int threads = Runtime.getRuntime().availableProcessors();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("-h") || a.equals("--help")) {
        System.out.println(usage());
        return;
      }
      if (i + 1 >= args.length) {
        fail("missing value for " + a);
      }
      String v = args[++i];
      switch (a) {
        case "--out" -> out = Path.of(v);
        case "--seed" -> seed = parseLong(a, v);
        case "--train" -> counts[0] = parseCount(a, v);
        case "--val" -> counts[1] = parseCount(a, v);
        case "--test" -> counts[2] = parseCount(a, v);
        case "--size" -> size = parseCount(a, v);
        case "--threads" -> threads = parseCount(a, v);
        default -> fail("unknown option " + a);
      }
    }
    if (out == null) {
      fail("--out is required");
    }
    ShapesVqaWriter writer = new ShapesVqaWriter(new ShapesVqa(seed, size), Math.max(1, threads));
    Files.createDirectories(out);
    Files.deleteIfExists(out.resolve("DONE"));
    long t0 = System.nanoTime();
    for (int s = 0; s < ShapesVqa.SPLITS.size(); s++) {
      writer.writeSplit(out, ShapesVqa.SPLITS.get(s), counts[s]);
      System.err.printf(
          "wrote %s: %d images, %d questions%n", ShapesVqa.SPLITS.get(s), counts[s], counts[s] * 6);
    }
    writer.writeDescriptor(out, counts);
    Files.writeString(out.resolve("DONE"), "ok\n");
    System.err.printf("done in %.1f s: %s%n", (System.nanoTime() - t0) / 1e9, out.toAbsolutePath());
  }

  private static long parseLong(String name, String v) {
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      fail(name + " must be an integer, got '" + v + "'");
      return 0;
    }
  }

  private static int parseCount(String name, String v) {
    long n = parseLong(name, v);
    if (n < 0 || n > 10_000_000) {
      fail(name + " must be in [0, 10000000], got " + v);
    }
    return (int) n;
  }

  private static void fail(String message) {
    System.err.println("error: " + message);
    System.err.println(usage());
    System.exit(2);
  }

  private static String usage() {
    return "usage: ShapesVqaCli --out DIR [--seed 1234] [--train 20000] [--val 500] [--test 1000]"
        + " [--size 128] [--threads N]";
  }
}
