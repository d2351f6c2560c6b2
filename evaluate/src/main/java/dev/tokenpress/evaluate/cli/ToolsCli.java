package dev.tokenpress.evaluate.cli;

import dev.tokenpress.evaluate.bench.MemoryBenchCommand;
import dev.tokenpress.evaluate.bench.PlanSpeedupBenchCommand;
import dev.tokenpress.evaluate.bench.RuntimeBenchCommand;
import dev.tokenpress.evaluate.eval.CalibrateCommand;
import dev.tokenpress.evaluate.eval.EvalCommand;
import dev.tokenpress.evaluate.eval.VitOutliersCommand;
import dev.tokenpress.runtime.cli.RuntimeCli;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Entry point of {@code bin/tokenpress}: the runtime's commands ({@link RuntimeCli}: model
 * build|random, generate, lm generate, convert llama2c) plus the evaluation and benchmark commands
 * of this module: {@code eval}, {@code calibrate mustdrop}, {@code report}, {@code diagnose
 * vit-outliers}, {@code var sinks}, {@code bench lm|lm-memory|runtime|plans|memory}. Usage errors
 * exit 2, failures 1, each with one message on stderr.
 */
public final class ToolsCli {
  private ToolsCli() {}

  static final String USAGE =
      EvalCommand.USAGE
          + "\n\n  "
          + CalibrateCommand.USAGE
          + "\n\n  "
          + ReportCommand.USAGE
          + "\n\n  "
          + VitOutliersCommand.USAGE
          + "\n\n  "
          + VarSinksCommand.USAGE
          + "\n\n  "
          + BenchLmCommand.USAGE
          + "\n\n  "
          + BenchLmMemoryCommand.USAGE
          + "\n\n  "
          + RuntimeBenchCommand.USAGE
          + "\n\n  "
          + PlanSpeedupBenchCommand.USAGE
          + "\n\n  "
          + MemoryBenchCommand.USAGE;

  static Map<String, RuntimeCli.Command> commands() {
    Map<String, RuntimeCli.Command> m = new LinkedHashMap<>();
    m.put("eval", EvalCommand::run);
    m.put("calibrate mustdrop", CalibrateCommand::run);
    m.put("report", ReportCommand::run);
    m.put("diagnose vit-outliers", VitOutliersCommand::run);
    m.put("var sinks", VarSinksCommand::run);
    m.put("bench lm", BenchLmCommand::run);
    m.put("bench lm-memory", BenchLmMemoryCommand::run);
    m.put("bench runtime", RuntimeBenchCommand::run);
    m.put("bench plans", PlanSpeedupBenchCommand::run);
    m.put("bench memory", MemoryBenchCommand::run);
    return m;
  }

  public static void main(String[] args) {
    int code = RuntimeCli.run(args, commands(), USAGE);
    if (code != 0) {
      System.exit(code);
    }
  }
}
