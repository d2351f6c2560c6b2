package dev.tokenpress.runtime.cli;

import dev.tokenpress.runtime.RunnerException;
import dev.tokenpress.runtime.bench.MemoryBenchCommand;
import dev.tokenpress.runtime.bench.PlanSpeedupBenchCommand;
import dev.tokenpress.runtime.bench.RuntimeBenchCommand;
import dev.tokenpress.runtime.bundle.BundleException;
import dev.tokenpress.runtime.convert.Llama2cConverter;
import dev.tokenpress.runtime.eval.CalibrateCommand;
import dev.tokenpress.runtime.eval.EvalCommand;
import dev.tokenpress.runtime.eval.VitOutliersCommand;
import java.util.Arrays;

/**
 * Entry point of the runtime's commands ({@code bin/tokenpress}): {@code model build|random},
 * {@code generate}, {@code lm generate}, {@code bench lm|runtime|plans|memory}, {@code eval},
 * {@code calibrate mustdrop}, {@code diagnose vit-outliers}, {@code var sinks},
 * {@code convert llama2c}. Results go to stdout as JSON;
 * usage errors exit 2, runtime failures exit 1, each with one message on stderr.
 */
public final class RuntimeCli {
    private RuntimeCli() {}

    static final String USAGE = "usage: tokenpress <command> [options]\n\ncommands:\n  " + ModelBuildCommand.USAGE + "\n\n  "
            + ModelRandomCommand.USAGE + "\n\n  " + GenerateCommand.USAGE + "\n\n  " + LmGenerateCommand.USAGE + "\n\n  "
            + BenchLmCommand.USAGE + "\n\n  "
            + BenchLmMemoryCommand.USAGE + "\n\n  " + RuntimeBenchCommand.USAGE + "\n\n  "
            + PlanSpeedupBenchCommand.USAGE + "\n\n  "
            + MemoryBenchCommand.USAGE + "\n\n  " + EvalCommand.USAGE + "\n\n  " + CalibrateCommand.USAGE
            + "\n\n  " + VitOutliersCommand.USAGE + "\n\n  " + VarSinksCommand.USAGE + "\n\n"
            + "  convert llama2c --checkpoint MODEL.bin --out DIR [--rope-theta 10000] [--norm-eps 1e-5]\n"
            + "  Converts a llama2.c checkpoint to a Hugging Face Llama checkpoint directory.";

    public static void main(String[] args) {
        int code = run(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    private static String convert(String[] argv) {
        Args a = new Args(argv, java.util.Set.of("--checkpoint", "--out", "--rope-theta", "--norm-eps"), java.util.Set.of());
        double theta;
        double eps;
        try {
            theta = Double.parseDouble(a.string("--rope-theta", "10000"));
            eps = Double.parseDouble(a.string("--norm-eps", "1e-5"));
        } catch (NumberFormatException e) {
            throw new UsageException("--rope-theta and --norm-eps must be numbers");
        }
        Llama2cConverter.Header h = Llama2cConverter.convert(a.path("--checkpoint"), a.path("--out"), theta, eps);
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

    /** Runs a command; returns the exit code. */
    static int run(String[] args) {
        if (args.length < 2 || args[0].equals("--help") || args[0].equals("-h")) {
            System.err.println(USAGE);
            return args.length == 1 && (args[0].equals("--help") || args[0].equals("-h")) ? 0 : 2;
        }
        boolean single = args[0].equals("generate") || args[0].equals("eval");
        String cmd = single ? args[0] : args[0] + " " + args[1];
        String[] rest = Arrays.copyOfRange(args, single ? 1 : 2, args.length);
        try {
            switch (cmd) {
                case "model build":
                    System.out.println(ModelBuildCommand.run(rest));
                    return 0;
                case "model random":
                    System.out.println(ModelRandomCommand.run(rest));
                    return 0;
                case "generate":
                    System.out.println(GenerateCommand.run(rest));
                    return 0;
                case "lm generate":
                    System.out.println(LmGenerateCommand.run(rest));
                    return 0;
                case "bench lm":
                    System.out.println(BenchLmCommand.run(rest));
                    return 0;
                case "bench runtime":
                    System.out.println(RuntimeBenchCommand.run(rest));
                    return 0;
                case "bench plans":
                    System.out.println(PlanSpeedupBenchCommand.run(rest));
                    return 0;
                case "bench memory":
                    System.out.println(MemoryBenchCommand.run(rest));
                    return 0;
                case "eval":
                    System.out.println(EvalCommand.run(rest));
                    return 0;
                case "diagnose vit-outliers":
                    System.out.println(VitOutliersCommand.run(rest));
                    return 0;
                case "var sinks":
                    System.out.println(VarSinksCommand.run(rest));
                    return 0;
                case "calibrate mustdrop":
                    System.out.println(CalibrateCommand.run(rest));
                    return 0;
                case "bench lm-memory":
                    System.out.println(BenchLmMemoryCommand.run(rest));
                    return 0;
                case "convert llama2c":
                    System.out.println(convert(rest));
                    return 0;
                default:
                    throw new UsageException("unknown command '" + cmd + "'");
            }
        } catch (UsageException e) {
            System.err.println("error: " + e.getMessage() + "\n\n" + USAGE);
            return 2;
        } catch (BundleException | RunnerException | IllegalArgumentException | java.io.UncheckedIOException
                 | dev.tokenpress.runtime.media.MediaDecodeException e) {
            System.err.println("error: " + e.getMessage());
            return 1;
        }
    }
}
