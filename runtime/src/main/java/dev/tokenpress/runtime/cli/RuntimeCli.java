package dev.tokenpress.runtime.cli;

import dev.tokenpress.runtime.RunnerException;
import dev.tokenpress.runtime.bundle.BundleException;
import dev.tokenpress.runtime.convert.Llama2cConverter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The runtime's commands: {@code model build|random}, {@code generate}, {@code lm generate}, {@code
 * convert llama2c}. {@code bin/tokenpress} runs them through the evaluate module's entry point,
 * which adds the evaluation and benchmark commands with {@link #run(String[], Map, String)}.
 * Results go to stdout as JSON; usage errors exit 2, runtime failures exit 1, each with one message
 * on stderr.
 */
public final class RuntimeCli {
  private RuntimeCli() {}

  static final String USAGE =
      ModelBuildCommand.USAGE
          + "\n\n  "
          + ModelRandomCommand.USAGE
          + "\n\n  "
          + GenerateCommand.USAGE
          + "\n\n  "
          + LmGenerateCommand.USAGE
          + "\n\n"
          + "  convert llama2c --checkpoint MODEL.bin --out DIR [--rope-theta 10000] [--norm-eps 1e-5]\n"
          + "  Converts a llama2.c checkpoint to a Hugging Face Llama checkpoint directory.";

  /** One command: its arguments after the command words to its JSON result. */
  @FunctionalInterface
  public interface Command {
    String run(String[] args);
  }

  public static void main(String[] args) {
    int code = run(args, Map.of(), "");
    if (code != 0) {
      System.exit(code);
    }
  }

  private static String convert(String[] argv) {
    Args a =
        new Args(
            argv,
            java.util.Set.of("--checkpoint", "--out", "--rope-theta", "--norm-eps"),
            java.util.Set.of());
    double theta;
    double eps;
    try {
      theta = Double.parseDouble(a.string("--rope-theta", "10000"));
      eps = Double.parseDouble(a.string("--norm-eps", "1e-5"));
    } catch (NumberFormatException e) {
      throw new UsageException("--rope-theta and --norm-eps must be numbers");
    }
    Llama2cConverter.Header h =
        Llama2cConverter.convert(a.path("--checkpoint"), a.path("--out"), theta, eps);
    com.fasterxml.jackson.databind.node.ObjectNode o = Json.object();
    o.put("out", a.path("--out").toAbsolutePath().toString());
    o.put("dim", h.dim());
    o.put("layers", h.numLayers());
    o.put("heads", h.numHeads());
    o.put("kv_heads", h.numKvHeads());
    o.put("vocab", h.vocabSize());
    o.put("tied_classifier", h.sharedClassifier());
    return Json.write(o);
  }

  /**
   * Runs a command; returns the exit code.
   *
   * @param extra further commands by name ({@code "eval"} or {@code "bench plans"}), tried after
   *     the runtime's
   * @param extraUsage their usage text, printed after the runtime's
   */
  public static int run(String[] args, Map<String, Command> extra, String extraUsage) {
    Map<String, Command> commands = new LinkedHashMap<>();
    commands.put("model build", ModelBuildCommand::run);
    commands.put("model random", ModelRandomCommand::run);
    commands.put("generate", GenerateCommand::run);
    commands.put("lm generate", LmGenerateCommand::run);
    commands.put("convert llama2c", RuntimeCli::convert);
    commands.putAll(extra);
    String usage =
        "usage: tokenpress <command> [options]\n\ncommands:\n  "
            + USAGE
            + (extraUsage.isEmpty() ? "" : "\n\n  " + extraUsage);
    if (args.length < 1 || args[0].equals("--help") || args[0].equals("-h")) {
      System.err.println(usage);
      return args.length == 1 ? 0 : 2;
    }
    boolean single = commands.containsKey(args[0]);
    if (!single && args.length < 2) {
      System.err.println("error: unknown command '" + args[0] + "'\n\n" + usage);
      return 2;
    }
    String cmd = single ? args[0] : args[0] + " " + args[1];
    String[] rest = Arrays.copyOfRange(args, single ? 1 : 2, args.length);
    try {
      Command c = commands.get(cmd);
      if (c == null) {
        throw new UsageException("unknown command '" + cmd + "'");
      }
      System.out.println(c.run(rest));
      return 0;
    } catch (UsageException e) {
      System.err.println("error: " + e.getMessage() + "\n\n" + usage);
      return 2;
    } catch (BundleException
        | RunnerException
        | IllegalArgumentException
        | java.io.UncheckedIOException
        | dev.tokenpress.runtime.media.MediaDecodeException e) {
      System.err.println("error: " + e.getMessage());
      return 1;
    }
  }
}
